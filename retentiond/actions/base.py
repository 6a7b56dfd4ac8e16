"""What every action is: an options model from the policy, checks against the live schema, words.

Each action module declares its options model (the YAML under ``action:``) and an
:class:`Action` subclass registered under the same ``type`` name.  Validation calls
:meth:`Action.check` against the reflected table; the plan calls :meth:`Action.describe`.
The enforcement engine adds the write path without changing these signatures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from retentiond.policy.filters import StrictModel
from retentiond.stores.base import ColumnInfo, ColumnKind, TableSchema


class ActionOptions(StrictModel):
    """Base of every action's options; ``type`` names the action."""

    type: str


@dataclass(frozen=True)
class Finding:
    """A problem an action found with its rule: ``path`` points into the rule's YAML."""

    path: tuple[str | int, ...]
    what: str
    fix: str


OptionsT = TypeVar("OptionsT", bound=ActionOptions)


class Action(ABC, Generic[OptionsT]):
    """An action a rule can take on the records it selects."""

    name: ClassVar[str]
    options_model: ClassVar[type[ActionOptions]]
    severity: ClassVar[int]
    """How much of a record the action takes away (pseudonymize < anonymize < quarantine <
    delete); rules on the same records must escalate in this order as records age."""

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


def text_fits(info: ColumnInfo, length: int) -> bool:
    """Whether ``length`` characters fit the column (unbounded text always fits)."""
    return info.length is None or length <= info.length


def is_text(info: ColumnInfo) -> bool:
    """Whether the column holds text."""
    return info.kind is ColumnKind.TEXT
