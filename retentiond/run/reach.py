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

A chain that comes back to a table already on it (a self-reference, a cycle) is not walked
again: where it deletes (cascade, delete first), any row referencing through it blocks, since
the database would cascade round the cycle deeper than the plan counts or the guards look.
A partition lacking a key its siblings have would keep orphans: its referencing rows block.

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
            child, cycle = fk.table, fk.table in seen
            if not fk.enforced:  # the database would leave these rows behind, orphaned
                blockers.append(Blocker(
                    f"{child} rows in partitions without the foreign key "
                    f"({', '.join(fk.within)}) would be orphaned{_via(here)}", here, None))
                continue
            if moving or (fk.on_delete.refuses and (not delete_children or cycle)):
                verb = "referenced by" if moving and not fk.on_delete.refuses else "restricted by"
                blockers.append(Blocker(f"{verb} {child}{_via(here)}", here, None))
                continue
            if cycle and fk.on_delete is OnDelete.CASCADE:
                # The database would cascade round the cycle to any depth, past what the plan
                # counts and the guards see: only rows nothing in the cycle references go.
                blockers.append(Blocker(f"referenced by {child} through a cycle of cascading "
                                        f"keys{_via(here)}", here, None))
                continue
            effect: Effect = ("cascade" if fk.on_delete is OnDelete.CASCADE
                              else "delete first" if fk.on_delete.refuses else "set null")
            reaches.append(Reach(here, effect))
            guards = guards_of(child)
            if guards:
                blockers.append(Blocker(f"{child} rows {_guarded(guards)} would be "
                                        f"{_DONE[effect]}{_via(here)}", here, guards))
            if effect != "set null" and not cycle:
                walk(child, here, seen | {child})

    walk(table, (), frozenset({table}))
    return Reaches(tuple(reaches), tuple(blockers))


_DONE: dict[Effect, str] = {"cascade": "deleted with them", "delete first": "deleted first",
                            "set null": "set to NULL"}


def _guarded(guards: tuple[Guard, ...]) -> str:
    holds = [g.id for g in guards if g.kind == "hold"]
    kept = [g.id for g in guards if g.kind == "retention"]
    return " or ".join([*([f"held by {', '.join(holds)}"] if holds else []),
                        *([f"retained by {', '.join(kept)}"] if kept else [])])


def _via(path: tuple[ForeignKey, ...]) -> str:
    """The chain of keys, for telling apart two ways of reaching one table."""
    return " (via " + " > ".join(f"{f.table}.{','.join(f.columns)}" for f in path) + ")"
