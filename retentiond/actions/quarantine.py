"""``quarantine``: isolate rows that cannot be deleted yet, until their release date.

"When deletion is not possible ... we isolate it from any further processing until deletion
is possible."  Rows move, in one transaction, to a quarantine table the application does not
read; they are restored exactly, or purged once ``release_after`` has passed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from retentiond.actions.base import Action, ActionOptions, Finding
from retentiond.policy.periods import PeriodField
from retentiond.stores.base import TableSchema


class QuarantineOptions(ActionOptions):
    """``{type: quarantine, release_after: 12 months}``: purge allowed that long after isolation."""

    type: Literal["quarantine"] = "quarantine"
    release_after: PeriodField


class QuarantineAction(Action[QuarantineOptions]):
    """Move selected rows to the quarantine table, to be restored or purged later."""

    name: ClassVar[str] = "quarantine"
    options_model = QuarantineOptions
    severity: ClassVar[int] = 3

    def check(self, table: TableSchema) -> list[Finding]:
        """Quarantine fits any table with a primary key (checked by validation itself)."""
        del table
        return []

    def describe(self) -> str:
        """What quarantining does."""
        return (
            "move the row to the quarantine table, out of the application's reach; "
            f"purge it {self.options.release_after} later unless restored"
        )
