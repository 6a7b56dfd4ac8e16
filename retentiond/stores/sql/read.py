"""Reading a selection: census, keys and referencing rows, in one read-only transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from retentiond.errors import StoreError
from retentiond.stores.base import Census, ForeignKey, Key, Reader, Selection
from retentiond.stores.sql._common import split_name
from retentiond.stores.sql.compile import Compiled, SelectionCompiler, after_key

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from retentiond.stores.sql.reflect import Reflected
    from retentiond.stores.sql.store import SqlStore

class SqlReader(Reader):
    """A :class:`Reader` over one read-only transaction of a :class:`SqlStore`.

    ``connection`` is the raw connection of that transaction, for diagnostics and tests; the
    reader itself only ever sends SELECTs through it.
    """

    def __init__(self, store: SqlStore, connection: Connection) -> None:
        self._store = store
        self.connection = connection

    def census(self, selection: Selection) -> Census:
        """Count the selection in one pass: conditional sums over the rows the filter passes."""
        compiled = self._compile(selection)
        table = compiled.table
        sums = {
            "matched": compiled.due,
            "null_age": compiled.undated,
            "held": sa.and_(compiled.due, compiled.held),
            "protected": sa.and_(compiled.due, sa.not_(compiled.held), compiled.retained),
        }
        sums.update({f"g{i}": sa.and_(compiled.due, p) for i, (_, p) in enumerate(compiled.guards)})
        population = sa.select(sa.func.count()).select_from(table).scalar_subquery()
        statement = sa.select(
            population.label("population"),
            *(sa.func.sum(sa.case((c, 1), else_=0)).label(label) for label, c in sums.items()),
        ).where(compiled.passing, sa.or_(compiled.due, compiled.undated))
        with self._store._errors(f"cannot count {selection.table!r}"):  # noqa: SLF001 - its policy
            row = self.connection.execute(statement).mappings().one()
        counts = {str(label): int(value or 0) for label, value in row.items()}
        return Census(
            population=counts["population"],
            matched=counts["matched"],
            null_age=counts["null_age"],
            held=counts["held"],
            protected=counts["protected"],
            eligible=counts["matched"] - counts["held"] - counts["protected"],
            by_guard={g.id: counts[f"g{i}"] for i, (g, _) in enumerate(compiled.guards)},
        )

    def keys(self, selection: Selection, *, after: Key | None, limit: int) -> list[Key]:
        """Eligible keys after ``after``: ``pk > :last ORDER BY pk LIMIT n``, never OFFSET."""
        if limit <= 0:
            raise StoreError(self._store.name, f"batch limit must be positive, got {limit}")
        compiled = self._compile(selection)
        key_columns = self._primary_key(compiled, selection.table)
        statement = (
            sa.select(*key_columns)
            .where(compiled.eligible)
            .order_by(*key_columns)
            .limit(limit)
        )
        if after is not None:
            if len(after) != len(key_columns):
                raise StoreError(
                    self._store.name,
                    f"a key of {selection.table!r} has {len(key_columns)} columns, got {after!r}",
                )
            statement = statement.where(after_key(key_columns, after, self._store.dialect_name))
        with self._store._errors(f"cannot read keys of {selection.table!r}"):  # noqa: SLF001
            return [tuple(row) for row in self.connection.execute(statement)]

    def count_referencing(self, selection: Selection, fk: ForeignKey) -> int:
        """Rows of ``fk.table`` whose ``fk.columns`` reference an eligible row of the selection."""
        if split_name(fk.ref_table)[1] != split_name(selection.table)[1]:
            raise StoreError(
                self._store.name,
                f"foreign key {fk.name or fk.columns} points at {fk.ref_table!r}, "
                f"not at {selection.table!r}",
            )
        parent = SelectionCompiler(self._store.name, self._table(selection.table))
        compiled = parent.selection(selection)
        child = SelectionCompiler(self._store.name, self._table(fk.table))
        parents = sa.select(*(parent.column(c) for c in fk.ref_columns)).where(compiled.eligible)
        children = [child.column(c) for c in fk.columns]
        reference = (
            children[0].in_(parents) if len(children) == 1 else sa.tuple_(*children).in_(parents)
        )
        statement = sa.select(sa.func.count()).select_from(children[0].table).where(reference)
        with self._store._errors(f"cannot count rows referencing {selection.table!r}"):  # noqa: SLF001
            return int(self.connection.execute(statement).scalar_one())

    def _table(self, table: str) -> Reflected:
        reflected = self._store._reflected(self.connection, table)  # noqa: SLF001
        if reflected is None:
            raise StoreError(
                self._store.name,
                f"table {table!r} does not exist",
                "check the rule's table (retentiond validate)",
            )
        return reflected

    def _compile(self, selection: Selection) -> Compiled:
        compiler = SelectionCompiler(self._store.name, self._table(selection.table))
        return compiler.selection(selection)

    def _primary_key(self, compiled: Compiled, table: str) -> list[sa.Column[Any]]:
        if not compiled.schema.primary_key:
            raise StoreError(
                self._store.name,
                f"table {table!r} has no primary key, so its rows cannot be walked in batches",
                "add a primary key to the table",
            )
        return [compiled.table.c[c] for c in compiled.schema.primary_key]

