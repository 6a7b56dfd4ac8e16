"""Every registered action carries its own facts on its class: the meta-test of the registry.

What differs between actions (its verbs, how the schedule and the report show it, what it
needs from a store, how its records go) is a ``ClassVar`` of :class:`Action`, read where it is
needed instead of kept in a table there.  :func:`missing_facts` says what one action class
lacks or states wrongly; the facts it checks are the ``ClassVar`` annotations of the base, so a
fact added there is required of every action at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar, get_args, get_origin, get_type_hints

import pytest

from retentiond.actions import REGISTRY, Action, ActionOptions, AnyActionOptions
from retentiond.actions.base import Verbs
from retentiond.actions.delete import DeleteAction
from retentiond.stores.base import Capability

FACTS = tuple(name for name, hint in get_type_hints(Action).items()
              if get_origin(hint) is ClassVar)
"""Every fact an action states: the class variables :class:`Action` declares."""

COLOUR = re.compile(r"^#[0-9a-f]{6}$")


def _text(value: object) -> bool:
    return isinstance(value, str) and value.strip() == value != ""


def _options_of(action: type[Action[Any]]) -> bool:
    model = action.options_model
    if not (isinstance(model, type) and issubclass(model, ActionOptions)):
        return False
    declared = model.model_fields["type"]
    return (action.name,) == get_args(declared.annotation) and action.name == declared.default


def _verbs(value: object) -> bool:
    return (isinstance(value, Verbs) and all(_text(form) for form in value)
            and len(set(value)) == len(value))


def _severity(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _needs(value: object) -> bool:
    return (isinstance(value, frozenset) and bool(value)
            and all(isinstance(need, Capability) for need in value))


def _flag(value: object) -> bool:
    return isinstance(value, bool)


CHECKS: dict[str, tuple[str, Callable[[type[Action[Any]]], bool]]] = {
    "name": ("a non-empty name", lambda a: _text(a.name)),
    "options_model": ("an options model whose `type` is Literal[name], defaulting to name",
                      _options_of),
    "severity": ("a positive whole number", lambda a: _severity(a.severity)),
    "needs": ("a non-empty frozenset of Capability", lambda a: _needs(a.needs)),
    "rechecks": ("True or False", lambda a: _flag(a.rechecks)),
    "removes_rows": ("True or False", lambda a: _flag(a.removes_rows)),
    "moves_rows": ("True or False, and True only for an action that removes rows",
                   lambda a: _flag(a.moves_rows) and (a.removes_rows or not a.moves_rows)),
    "needs_pseudonym_key": ("True or False", lambda a: _flag(a.needs_pseudonym_key)),
    "verbs": ("three distinct, non-empty forms", lambda a: _verbs(a.verbs)),
    "outcome": ("non-empty words", lambda a: _text(a.outcome)),
    "colour": ("a colour like #b2182b", lambda a: isinstance(a.colour, str)
               and COLOUR.match(a.colour) is not None),
}
"""What each fact must be, in words, and the test of it."""


def missing_facts(action: type[Action[Any]]) -> list[str]:
    """Every fact ``action`` lacks or states wrongly, in words (empty when it states them all)."""
    found = [] if (vars(action).get("__doc__") or "").strip() else ["docstring: missing"]
    unstated = [f"{fact}: not stated" for fact in FACTS if not hasattr(action, fact)]
    if unstated:  # some checks read two facts: check forms once every fact is there
        return found + unstated
    return found + [f"{fact}: {getattr(action, fact)!r} is not {wanted}"
                    for fact, (wanted, holds) in CHECKS.items() if not holds(action)]


def _stand_in(left_out: str = "", **facts: object) -> type[Action[Any]]:
    """A throwaway action stating every fact of delete, but ``left_out``, and ``facts``."""
    stated = {fact: getattr(DeleteAction, fact) for fact in FACTS if fact != left_out}
    return type("StandInAction", (Action,), {
        "__doc__": "A stand-in, never registered.", **stated, **facts})


def test_every_fact_has_a_check():
    """Each fact the base declares is checked here, and nothing else is."""
    assert sorted(FACTS) == sorted(CHECKS)


@pytest.mark.parametrize("action", REGISTRY.values(), ids=list(REGISTRY))
def test_every_registered_action_states_every_fact(action):
    """Each action in the registry states every fact, each in its right form."""
    assert [] == missing_facts(action)


@pytest.mark.parametrize("fact", FACTS)
def test_an_action_lacking_a_fact_is_reported(fact):
    """An action class that leaves out any one fact is reported for exactly that fact."""
    assert [f"{fact}: not stated"] == missing_facts(_stand_in(left_out=fact))


@pytest.mark.parametrize(("facts", "wrong"), [
    pytest.param({"verbs": Verbs("delete", "delete", "deleting")}, "verbs", id="same-verbs"),
    pytest.param({"verbs": ("delete", "deleted", "deleting")}, "verbs", id="plain-tuple"),
    pytest.param({"name": "erase"}, "options_model", id="type-is-not-name"),
    pytest.param({"severity": True}, "severity", id="severity-bool"),
    pytest.param({"needs": frozenset()}, "needs", id="needs-nothing"),
    pytest.param({"moves_rows": True, "removes_rows": False}, "moves_rows", id="moves-in-place"),
    pytest.param({"outcome": ""}, "outcome", id="no-outcome"),
    pytest.param({"colour": "red"}, "colour", id="colour-by-name"),
])
def test_an_action_stating_a_fact_wrongly_is_reported(facts, wrong):
    """An action class whose fact has the wrong form is reported for that fact."""
    assert [wrong] == [found.split(":")[0] for found in missing_facts(_stand_in(**facts))]


def test_an_action_without_a_docstring_is_reported():
    """An action class must say in its docstring what it does."""
    assert ["docstring: missing"] == missing_facts(_stand_in(__doc__=None))


def test_the_registry_names_each_action_by_its_name():
    """Each action is registered under its own name, the ``type`` of its options."""
    assert [] == [key for key, action in REGISTRY.items() if key != action.name]


def test_every_options_model_is_in_the_rule_model():
    """The options a rule's ``action:`` may hold are exactly those of the registered actions."""
    union = get_args(AnyActionOptions)[0]

    assert {a.options_model for a in REGISTRY.values()} == set(get_args(union))


@pytest.mark.parametrize("fact", ["severity", "verbs", "outcome", "colour"])
def test_facts_that_tell_actions_apart_are_unique(fact):
    """No two actions share a severity (the escalation order), verbs, an outcome or a colour."""
    values = [getattr(action, fact) for action in REGISTRY.values()]

    assert len(values) == len(set(values))
