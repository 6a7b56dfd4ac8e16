"""What every action is: an options model from the policy, checks against the live schema, words.

Each action module declares its options model (the YAML under ``action:``) and an
:class:`Action` subclass registered under the same ``type`` name.  Validation calls
:meth:`Action.check` against the reflected table; the plan calls :meth:`Action.describe`.
The enforcement engine adds the write path without changing these signatures.

Everything else that differs between actions is a fact on the class (its verbs, how the
schedule and the report show it, what it needs from a store), so that the engine, the
publications and validation read it there instead of comparing ``type`` strings, and a new
action touches its own module and the registry only.  ``tests/actions/test_facts.py`` walks
the registry and fails when an action lacks one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar

from retentiond.policy.strict import StrictModel
from retentiond.stores.base import (
    Capability,
    ColumnInfo,
    PendingCheck,
    Reach,
    Row,
    Selection,
    TableSchema,
    Writer,
)

if TYPE_CHECKING:
    from retentiond.keyring import Keyring


class ActionOptions(StrictModel):
    """Base of every action's options; ``type`` names the action."""

    type: str


@dataclass(frozen=True)
class Finding:
    """A problem an action found with its rule: ``path`` points into the rule's YAML."""

    path: tuple[str | int, ...]
    what: str
    fix: str


class Verbs(NamedTuple):
    """The action as a verb, in the forms sentences about a record need."""

    present: str
    """``the next run will {present} it``."""
    past: str
    """``it is already {past}``."""
    gerund: str
    """``{gerund} needs a key``: the doing itself."""


OptionsT = TypeVar("OptionsT", bound=ActionOptions)

AuditBody = dict[str, Any]
"""What an applied batch tells the audit log: keys, counts, methods; never a column value."""


@dataclass(frozen=True)
class Batch:
    """One batch of claimed rows for an action to apply, inside the writer's transaction."""

    run_id: str
    batch_id: str
    rule: str
    table: TableSchema
    rows: Sequence[Row]
    as_of: datetime
    reaches: Sequence[Reach] = ()
    keyring: Keyring | None = None
    recheck: Selection | None = None
    """Set when the rows were claimed unlocked: act only on those still eligible under it."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keys(self) -> list[tuple[object, ...]]:
        """The claimed keys, in key order."""
        return [key for key, _ in self.rows]


class Action(ABC, Generic[OptionsT]):
    """An action a rule can take on the records it selects."""

    name: ClassVar[str]
    options_model: ClassVar[type[ActionOptions]]
    severity: ClassVar[int]
    """How much of a record the action takes away (pseudonymize < anonymize < quarantine <
    delete); rules on the same records must escalate in this order as records age."""

    needs: ClassVar[frozenset[Capability]]
    """What the rule's store must be able to do (:class:`~retentiond.stores.base.Capability`)."""

    rechecks: ClassVar[bool]
    """Whether :meth:`apply` removes rows through ``Batch.recheck`` when it is set, so that
    the rows need no lock between claim and act (the writer re-checks them as it acts)."""

    removes_rows: ClassVar[bool]
    """Whether the records leave their table (rather than having columns rewritten in place):
    then what the removal reaches through foreign keys is walked, and may block it."""

    moves_rows: ClassVar[bool]
    """Whether removed records are kept elsewhere to be restored: then every reference to
    them blocks, since the children of a record that may come back must not go with it."""

    needs_pseudonym_key: ClassVar[bool]
    """Whether running the action takes the pseudonym key of the config."""

    verbs: ClassVar[Verbs]
    """How explanations and messages name the action."""

    outcome: ClassVar[str]
    """What happens to a record at the end of its period, in a customer's words: the
    published retention schedule says this (``Deleted``)."""

    colour: ClassVar[str]
    """The action's colour (``#rrggbb``) in every chart and legend of the review report."""

    def __init__(self, options: OptionsT) -> None:
        self.options = options

    @abstractmethod
    def check(self, table: TableSchema) -> list[Finding]:
        """Every way the options do not fit the live table (empty when they fit)."""

    @abstractmethod
    def describe(self) -> str:
        """What the action does to a selected record, in words a reviewer understands."""

    def touched_columns(self) -> tuple[str, ...]:
        """Columns the action rewrites (empty for actions that remove whole rows)."""
        return ()

    def deletes_children(self) -> bool:
        """Whether restricting children are deleted first instead of blocking the removal."""
        return False

    def pending(self, table: TableSchema, rule: str) -> tuple[PendingCheck, ...]:
        """How to recognize rows ``rule`` has not rewritten yet (empty: every row is pending)."""
        del table, rule
        return ()

    @abstractmethod
    def apply(self, writer: Writer, batch: Batch) -> AuditBody:
        """Act on the batch through ``writer``; say what was done, in keys and counts."""


def changed_rows(
    rows: Sequence[Row], transform: Callable[[tuple[object, ...], tuple[object, ...]],
                                             tuple[object, ...]],
) -> list[Row]:
    """Each row whose ``transform(key, values)`` differs from its values, with the new ones.

    Rows that would not change are left out: a rewrite that changes nothing is no action.
    """
    changed: list[Row] = []
    for key, values in rows:
        new = transform(key, values)
        if new != values:
            changed.append((key, new))
    return changed


def column_or_finding(
    table: TableSchema, column: str, path: tuple[str | int, ...],
) -> ColumnInfo | Finding:
    """The column, or a finding that names the columns that do exist."""
    info = table.columns.get(column)
    if info is not None:
        return info
    known = ", ".join(sorted(table.columns))
    return Finding(path, f"column {column!r} does not exist in table {table.name!r}",
                   f"use one of: {known}")

