"""The registry of actions: each ``type`` in a rule's ``action:`` maps to one Action class."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from retentiond.actions.anonymize import AnonymizeAction, AnonymizeOptions
from retentiond.actions.base import Action, ActionOptions, Finding
from retentiond.actions.delete import DeleteAction, DeleteOptions
from retentiond.actions.pseudonymize import PseudonymizeAction, PseudonymizeOptions
from retentiond.actions.quarantine import QuarantineAction, QuarantineOptions

REGISTRY: dict[str, type[Action[Any]]] = {
    action.name: action
    for action in (DeleteAction, AnonymizeAction, PseudonymizeAction, QuarantineAction)
}

AnyActionOptions = Annotated[
    DeleteOptions | AnonymizeOptions | PseudonymizeOptions | QuarantineOptions,
    Field(discriminator="type"),
]
"""What may stand under ``action:`` in a rule, told apart by ``type``."""


def action_for(options: ActionOptions) -> Action[Any]:
    """The Action that carries out ``options``."""
    return REGISTRY[options.type](options)


__all__ = [
    "REGISTRY",
    "Action",
    "ActionOptions",
    "AnonymizeOptions",
    "AnyActionOptions",
    "DeleteOptions",
    "Finding",
    "PseudonymizeOptions",
    "QuarantineOptions",
    "action_for",
]
