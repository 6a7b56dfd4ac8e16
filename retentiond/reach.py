"""What removing a row reaches through foreign keys, and what must therefore block it.

Foreign keys are honoured, never disabled.  Walking every chain of foreign keys that points at
a table, removing a row:

- cascades to children (ON DELETE CASCADE): they are recorded for the audit log, and a child
  under a hold or minimum retention blocks the parent;
- nulls children's references (ON DELETE SET NULL / SET DEFAULT): recorded, and a protected
  child blocks the parent, because its row would change;
- is refused by children (RESTRICT / NO ACTION): with ``on_children: refuse`` any such child
  blocks the parent; with ``on_children: delete`` the children are deleted first (recorded,
  and blocked by their own guards and children in turn).

Quarantine moves rows and must be able to put them back exactly, so any child blocks it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from retentiond.errors import SchemaChanged
from retentiond.stores.base import Blocker, ForeignKey, Guard, OnDelete, Reach, Store

GuardsOf = Callable[[str], tuple[Guard, ...]]
Effect = Literal["cascade", "set null", "delete first"]


@dataclass(frozen=True)
class Reaches:
    """Every chain a removal reaches, and the blockers that keep parents it must not remove."""

    reaches: tuple[Reach, ...] = ()
    blockers: tuple[Blocker, ...] = ()


def reaches_of(
    store: Store, table: str, *, delete_children: bool, moving: bool, guards_of: GuardsOf,
) -> Reaches:
    """Walk the foreign keys pointing at ``table`` (and below) for a removal of its rows."""
    reaches: list[Reach] = []
    blockers: list[Blocker] = []

    def walk(current: str, path: tuple[ForeignKey, ...], seen: frozenset[str]) -> None:
        schema = store.schema(current)
        if schema is None:
            raise SchemaChanged(store.name, f"table {current!r} disappeared",
                                "run 'retentiond validate'")
        for fk in schema.referenced_by:
            here = (*path, fk)
            name = " > ".join(f"{f.table}.{','.join(f.columns)}" for f in here)
            child, cycle = fk.table, fk.table in seen
            guards = guards_of(child)
            if moving or (_restricts(fk) and (not delete_children or cycle)):
                blockers.append(Blocker(f"children: {name}", here, None))
                continue
            effect: Effect = ("cascade" if fk.on_delete is OnDelete.CASCADE
                              else "delete first" if _restricts(fk) else "set null")
            reaches.append(Reach(here, effect))
            if guards:
                blockers.append(Blocker(f"protected {effect}: {name}", here, guards))
            if effect != "set null" and not cycle:
                walk(child, here, seen | {child})

    walk(table, (), frozenset({table}))
    return Reaches(tuple(reaches), tuple(blockers))


def _restricts(fk: ForeignKey) -> bool:
    return fk.on_delete in {OnDelete.RESTRICT, OnDelete.NO_ACTION}
