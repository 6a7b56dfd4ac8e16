"""``delete``: remove the selected rows, honouring foreign keys, never disabling them."""

from __future__ import annotations

from typing import ClassVar, Literal

from retentiond.actions.base import Action, ActionOptions, AuditBody, Batch, Finding, Verbs
from retentiond.stores.base import Capability, TableSchema, Writer


class DeleteOptions(ActionOptions):
    """``{type: delete, on_children: refuse|delete}``.

    ``on_children`` decides what happens where child rows reference a selected record through
    a RESTRICT / NO ACTION foreign key: ``refuse`` (the default) skips that record and reports
    it as blocked; ``delete`` removes the children first, deepest first, in the same transaction.
    """

    type: Literal["delete"] = "delete"
    on_children: Literal["refuse", "delete"] = "refuse"


class DeleteAction(Action[DeleteOptions]):
    """Delete selected rows in batches walked along the primary key."""

    name: ClassVar[str] = "delete"
    options_model = DeleteOptions
    severity: ClassVar[int] = 4
    needs: ClassVar[frozenset[Capability]] = frozenset({Capability.REMOVE})
    rechecks: ClassVar[bool] = True
    removes_rows: ClassVar[bool] = True
    moves_rows: ClassVar[bool] = False
    needs_pseudonym_key: ClassVar[bool] = False
    verbs: ClassVar[Verbs] = Verbs("delete", "deleted", "deleting")
    outcome: ClassVar[str] = "Deleted"
    colour: ClassVar[str] = "#b2182b"

    def check(self, table: TableSchema) -> list[Finding]:
        """Deleting fits any table with a primary key (checked by validation itself)."""
        del table
        return []

    def describe(self) -> str:
        """What deleting does, including what happens where children block it."""
        children = (
            "rows with restricting children are skipped and reported as blocked"
            if self.options.on_children == "refuse"
            else "restricting children are deleted first, deepest first, in the same transaction"
        )
        return f"delete the row; {children}"

    def deletes_children(self) -> bool:
        """Whether the rule says ``on_children: delete``."""
        return self.options.on_children == "delete"

    def apply(self, writer: Writer, batch: Batch) -> AuditBody:
        """Delete the batch's rows (and first their children, where the rule says so)."""
        removal = writer.remove(batch.table.name, batch.keys, batch.reaches,
                                recheck=batch.recheck)
        return {"keys": list(removal.removed), "count": len(removal.removed),
                "reached": {label: list(keys) for label, keys in removal.reached.items()},
                "reached_count": sum(len(keys) for keys in removal.reached.values())}
