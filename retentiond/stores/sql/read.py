"""Reading a selection: census, keys and referencing rows, in one read-only transaction."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from retentiond.errors import StoreError
from retentiond.stores.base import (
    Census,
    Key,
    Reach,
    Reached,
    ReachEffect,
    Reader,
    RelatedAge,
    Selection,
    reach_order,
)
from retentiond.stores.sql.compile import SelectionCompiler, after_key, referencing
from retentiond.stores.sql.session import Session


class SqlReader(Session, Reader):
    """A :class:`Reader` over one read-only transaction of a :class:`SqlStore`.

    ``connection`` is the raw connection of that transaction, for diagnostics and tests; the
    reader itself only ever sends SELECTs through it.
    """

    def census(self, selection: Selection) -> Census:
        """Count the selection in one pass: conditional sums over the rows the filter passes."""
        compiled = self.compile(selection)
        table = compiled.table
        kept = sa.or_(compiled.held, compiled.retained)
        sums = {
            "matched": compiled.due,
            "null_age": compiled.undated,
            "held": sa.and_(compiled.due, compiled.held),
            "protected": sa.and_(compiled.due, sa.not_(compiled.held), compiled.retained),
            "blocked": sa.and_(compiled.due, sa.not_(kept), compiled.blocked),
            "done": sa.and_(compiled.due, sa.not_(kept), sa.not_(compiled.blocked),
                            sa.not_(compiled.pending)),
        }
        sums.update({f"g{i}": sa.and_(compiled.due, p) for i, (_, p) in enumerate(compiled.guards)})
        sums.update({f"b{i}": sa.and_(compiled.due, p)
                     for i, (_, p) in enumerate(compiled.blockers)})
        population = sa.select(sa.func.count()).select_from(table).scalar_subquery()
        statement = sa.select(
            population.label("population"),
            *(sa.func.sum(sa.case((c, 1), else_=0)).label(label) for label, c in sums.items()),
        ).select_from(table).where(compiled.passing, sa.or_(compiled.due, compiled.undated))
        with self._parts.errors(f"cannot count {selection.table!r}"):
            row = self.connection.execute(statement).mappings().one()
        counts = {str(label): int(value or 0) for label, value in row.items()}
        return Census(
            population=counts["population"],
            matched=counts["matched"],
            null_age=counts["null_age"],
            held=counts["held"],
            protected=counts["protected"],
            eligible=(counts["matched"] - counts["held"] - counts["protected"] - counts["blocked"]
                      - counts["done"]),
            by_guard={g.id: counts[f"g{i}"] for i, (g, _) in enumerate(compiled.guards)}
            | {b.id: counts[f"b{i}"] for i, (b, _) in enumerate(compiled.blockers)},
            blocked=counts["blocked"],
            done=counts["done"],
        )

    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys after ``after``: ``pk > :last ORDER BY pk LIMIT n``, never OFFSET."""
        if limit <= 0:
            raise StoreError(self._parts.name, f"batch limit must be positive, got {limit}")
        compiled = self.compile(selection)
        key_columns = self.primary_key(compiled, selection.table)
        statement = (
            sa.select(*key_columns)
            .where(compiled.eligible)
            .order_by(*key_columns)
            .limit(limit)
        )
        if after is not None:
            if len(after) != len(key_columns):
                raise StoreError(
                    self._parts.name,
                    f"a key of {selection.table!r} has {len(key_columns)} columns, got {after!r}",
                )
            statement = statement.where(after_key(key_columns, after, self._parts.family))
        with self._parts.errors(f"cannot read keys of {selection.table!r}"):
            return [tuple(row) for row in self.connection.execute(statement)]

    def reached(self, selection: Selection, reaches: Sequence[Reach]) -> tuple[Reached, ...]:
        """Per table reached: distinct rows deleted, rows set NULL (and not deleted), population.

        One statement per table; every chain ending there is a condition on the same row, so
        a row reached by several chains counts once, as deleted if any chain deletes it.
        """
        if not reaches:
            return ()
        compiled = self.compile(selection)
        found: list[Reached] = []
        for name in reach_order(reaches):
            target = self.table(name).table.alias("reached")
            chains: dict[ReachEffect, list[sa.ColumnElement[bool]]] = {
                "delete": [], "set null": []}
            for number, reach in enumerate(r for r in reaches if r.path[-1].table == name):
                parents = sa.select(*(compiled.table.c[c] for c in reach.path[0].ref_columns))
                condition = referencing(self.table, reach.path, parents.where(compiled.eligible),
                                        target, name=f"r{number}")
                chains["set null" if reach.effect == "set null" else "delete"].append(condition)
            if name == selection.table:  # rows the rule removes itself are not reached too
                removed = SelectionCompiler(
                    self._parts.name, self.table(name), family=self._parts.family,
                    lookup=self.table, alias=target).selection(selection).eligible
                chains = {effect: [sa.and_(c, sa.not_(removed)) for c in conditions]
                          for effect, conditions in chains.items()}
            deleted = sa.or_(*chains["delete"]) if chains["delete"] else sa.false()
            nulled = sa.and_(sa.or_(*chains["set null"]), sa.not_(deleted)) \
                if chains["set null"] else sa.false()
            statement = sa.select(
                sa.func.count(),
                *(sa.func.sum(sa.case((c, 1), else_=0)) for c in (deleted, nulled)),
            ).select_from(target)
            with self._parts.errors(f"cannot count the rows of {name!r} a removal reaches"):
                population, gone, emptied = self.connection.execute(statement).one()
            counts: dict[ReachEffect, int] = {"delete": gone, "set null": emptied}
            ways = sorted({r.effect for r in reaches if r.path[-1].table == name})
            found.extend(
                Reached(name, effect, int(rows or 0), int(population),
                        tuple(w for w in ways if (w == "set null") == (effect == "set null")))
                for effect, rows in counts.items() if chains[effect])
        return tuple(found)

    def stored(self, table: str, key: Key, columns: Sequence[str]) -> dict[str, object] | None:
        """The record's key and ``columns`` (read as text), or None when there is none."""
        compiler = self.compiler(table)
        schema = self.table(table).schema
        statement = sa.select(
            *(compiler.column(c) for c in schema.primary_key),
            *(sa.type_coerce(compiler.column(c), sa.String) for c in columns)).where(
            *(compiler.column(c) == v for c, v in zip(schema.primary_key, key, strict=True)))
        with self._parts.errors(f"cannot read the record of {table!r}"):
            row = self.connection.execute(statement).first()
        if row is None:
            return None
        width = len(schema.primary_key)
        return {**dict(zip(schema.primary_key, row[:width], strict=True)),
                **dict(zip(columns, row[width:], strict=True))}

    def related_age(self, table: str, key: Key, related: RelatedAge) -> object:
        """The newest (or oldest) related date of the record, as text; None when it has none."""
        compiler = self.compiler(table)
        schema = self.table(table).schema
        statement = sa.select(compiler.related_value(related)).select_from(
            self.table(table).table).where(
            *(compiler.column(c) == v for c, v in zip(schema.primary_key, key, strict=True)))
        with self._parts.errors(f"cannot read the related rows of {table!r}"):
            return self.connection.execute(statement).scalar()
