"""``quarantine``: isolate rows that cannot be deleted yet, until their release date.

"When deletion is not possible ... we isolate it from any further processing until deletion
is possible."  Rows move, in one transaction, to a quarantine table the application does not
read; they are restored exactly, or purged once ``release_after`` has passed.
"""

from __future__ import annotations

from datetime import UTC
from typing import ClassVar, Literal

from retentiond.actions.base import Action, ActionOptions, AuditBody, Batch, Finding, Verbs
from retentiond.policy.periods import PeriodField
from retentiond.stores.base import Capability, TableSchema, Writer


class QuarantineOptions(ActionOptions):
    """``{type: quarantine, release_after: 12 months}``: purge allowed that long after isolation."""

    type: Literal["quarantine"] = "quarantine"
    release_after: PeriodField


class QuarantineAction(Action[QuarantineOptions]):
    """Move selected rows to the quarantine table, to be restored or purged later."""

    name: ClassVar[str] = "quarantine"
    options_model = QuarantineOptions
    severity: ClassVar[int] = 3
    needs: ClassVar[frozenset[Capability]] = frozenset({Capability.QUARANTINE})
    rechecks: ClassVar[bool] = True
    removes_rows: ClassVar[bool] = True
    moves_rows: ClassVar[bool] = True
    needs_pseudonym_key: ClassVar[bool] = False
    verbs: ClassVar[Verbs] = Verbs("quarantine", "quarantined", "quarantining")
    outcome: ClassVar[str] = "Isolated from all processing, then deleted"
    colour: ClassVar[str] = "#e08214"

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

    def apply(self, writer: Writer, batch: Batch) -> AuditBody:
        """Move the batch's rows to quarantine, releasable ``release_after`` from now."""
        release_at = batch.as_of.astimezone(UTC) + self.options.release_after.as_relativedelta()
        removal = writer.quarantine(batch.table.name, batch.keys, batch_id=batch.batch_id,
                                    run_id=batch.run_id, rule=batch.rule,
                                    release_at=release_at.isoformat(timespec="seconds"),
                                    recheck=batch.recheck)
        return {"keys": list(removal.removed), "count": len(removal.removed),
                "release_at": release_at.isoformat(timespec="seconds")}
