"""Generated schemas, data and policies, loaded into a real backend and judged by the oracle.

A :class:`Shape` is everything one hypothesis example needs: tables with integer, composite or
text primary keys, foreign keys between them (chains, several paths to one table, a
self-reference, sometimes a cycle) with random ON DELETE, rows with NULLs and ages around the
cutoffs, one rule, and holds and minimum retentions.  :func:`shapes` draws them; :func:`load`
creates and fills the tables on a backend; :class:`Trial` builds an Engine and a ledger over a
shape and reads the tables back.

Flags named ``WITH_...`` switch on shapes that the current code is known to get wrong (see
the explicit examples in ``test_findings.py``); re-enable them once those are fixed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st

from retentiond.audit import AuditLedger, Kind
from retentiond.enforce import Options, RuleReport, RuleRun
from retentiond.engine import Engine
from retentiond.policy import oracle
from retentiond.policy.loader import load_policies
from retentiond.policy.model import PolicySet, Rule
from retentiond.settings import Defaults, StoreSettings
from retentiond.state import StateDB
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStore
from retentiond.validation import validate_live

# -- switches for shapes the current code is known to get wrong ------------------------------

WITH_UNBLOCKING = os.environ.get("RETENTIOND_ORACLE_UNBLOCKING") == "1"
"""Shapes where one batch's deletions change which later rows are eligible: see test_findings."""
REACHED_ONCE = os.environ.get("RETENTIOND_ORACLE_REACHED_ONCE", "1") == "1"
"""Assert each reached row is audited once, however many paths reach it (issue (a)); set
RETENTIOND_ORACLE_REACHED_ONCE=0 to check only which rows are audited, not how often."""

# -- how many examples ------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])

LONG = "RETENTIOND_ORACLE_EXAMPLES" in os.environ
SEED = int(os.environ.get("RETENTIOND_ORACLE_SEED", str(int.from_bytes(os.urandom(4), "big"))))
"""The seed of a long run (printed in the report header); the default mode is derandomized."""


def examples(default: int) -> Callable[[F], F]:
    """``default`` examples, derandomized; or the long mode's count, from SEED."""
    count = int(os.environ["RETENTIOND_ORACLE_EXAMPLES"]) if LONG else default
    chosen = settings(max_examples=count, deadline=None, derandomize=not LONG, database=None,
                      print_blob=True,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow, HealthCheck.data_too_large,
                                             HealthCheck.filter_too_much])

    def decorate(test: F) -> F:
        return chosen(seed(SEED)(test) if LONG else test)

    return decorate


# -- the moments ------------------------------------------------------------------------------

AS_OFS = (
    datetime(2026, 3, 15, 12, 0, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 30, tzinfo=UTC),
    datetime(2026, 3, 31, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
PERIODS = ("12 months", "1 year", "30 days", "6 months 2 weeks", "1 month", "2 years")
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)

# -- shapes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A generated column: name, kind (int, text or stamp), nullable."""

    name: str
    kind: str
    nullable: bool = True


@dataclass(frozen=True)
class TableShape:
    """A generated table: its columns and the names of its filter and age columns."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    number: str
    text: str
    stamp: str


@dataclass(frozen=True)
class ForeignKey:
    """A generated foreign key; ``late`` ones are added after both tables exist."""

    reference: oracle.Reference
    name: str
    late: bool


@dataclass
class Shape:
    """One example: tables, foreign keys, rows, the policy text and the moment of the run."""

    tables: tuple[TableShape, ...]
    foreign_keys: tuple[ForeignKey, ...]
    rows: dict[str, list[dict[str, object]]]
    policy: dict[str, Any]
    as_of: datetime
    notes: list[str] = field(default_factory=list)

    @property
    def schema(self) -> oracle.Schema:
        """The oracle's view of the tables and foreign keys."""
        return oracle.Schema(
            tuple(oracle.Table(t.name, tuple(c.name for c in t.columns), t.key)
                  for t in self.tables),
            tuple(fk.reference for fk in self.foreign_keys))

    def table(self, name: str) -> TableShape:
        """The table called ``name``."""
        return next(t for t in self.tables if t.name == name)

    def describe(self) -> str:
        """A readable summary, for failure messages."""
        fks = [f"{r.table}({','.join(r.columns)})->{r.parent} {r.on_delete}"
               for r in (fk.reference for fk in self.foreign_keys)]
        return json.dumps({"tables": [t.name for t in self.tables], "fks": fks,
                           "rows": self.rows, "policy": self.policy,
                           "as_of": self.as_of.isoformat()}, default=str, indent=1)


def _name(draw: st.DrawFn, plain: str, fancy: str) -> str:
    return draw(st.sampled_from((plain, plain, fancy)))


@st.composite
def _filter(draw: st.DrawFn, table: TableShape, depth: int = 0) -> dict[str, Any]:
    """A filter over the integer or text column of ``table`` (nested up to two levels)."""
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        kind = draw(st.sampled_from(("all", "any", "not")))
        if kind == "not":
            return {"not": draw(_filter(table, depth + 1))}
        return {kind: draw(st.lists(_filter(table, depth + 1), min_size=1, max_size=2))}
    if draw(st.booleans()):
        # References too: a hold on rows whose reference is NULL changes as parents go.
        references = [c.name for c in table.columns if c.name.startswith("r") and c.kind == "int"]
        column = draw(st.sampled_from((table.number, table.number, *references)))
        values = st.integers(-2, 3) if column == table.number else st.integers(1, 5)
        ops = ("eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null")
    else:
        column, values = table.text, st.text("abc", min_size=0, max_size=2)
        ops = ("eq", "ne", "lt", "ge", "in", "not_in", "is_null", "not_null", "like")
    op = draw(st.sampled_from(ops))
    if op in {"is_null", "not_null"}:
        return {"column": column, "op": op}
    if op in {"in", "not_in"}:
        return {"column": column, "op": op,
                "value": draw(st.lists(values, min_size=1, max_size=3, unique=True))}
    if op == "like":
        return {"column": column, "op": op,
                "value": draw(st.sampled_from(("a%", "%b", "_", "a_", "%", "%c%", "b")))}
    return {"column": column, "op": op, "value": draw(values)}


@st.composite
def shapes(draw: st.DrawFn, kind: str) -> Shape:  # noqa: C901, PLR0912, PLR0915 - one recipe
    """A random schema of 1-5 tables, its rows, a rule and its guards, for backend ``kind``."""
    as_of = draw(st.sampled_from(AS_OFS))
    count = draw(st.sampled_from((1, 2, 2, 3, 3, 4, 5)))
    tables: list[TableShape] = []
    clocks = ("stamp", "stamp", "date", *(("stamptz",) if kind == "postgresql" else ()))
    for index in range(count):
        name = _name(draw, f"t{index}", f"Tab{index}")
        style = draw(st.sampled_from(("int", "int", "composite", "mixed", "text")))
        key_columns = {"int": (Column("id", "int", nullable=False),),
                       "composite": (Column("ka", "int", nullable=False),
                                     Column("kb", "int", nullable=False)),
                       "mixed": (Column("ka", "int", nullable=False),
                                 Column("code", "text", nullable=False)),
                       "text": (Column("code", "text", nullable=False),)}[style]
        number, text = _name(draw, "n", "Score"), _name(draw, "s", "Label")
        stamp = _name(draw, "ts", "CreatedAt")
        columns = (*key_columns, Column(number, "int"), Column(text, "text"),
                   Column(stamp, draw(st.sampled_from(clocks))))
        tables.append(TableShape(name, columns, tuple(c.name for c in key_columns),
                                 number, text, stamp))

    references: list[ForeignKey] = []

    def add(child: int, parent: int, on_delete: str, *, late: bool) -> None:
        target = tables[parent]
        number = len(references)
        own = tuple(f"r{number}_{c}" for c in target.key)
        kinds = {c.name: c.kind for c in target.columns}
        tables[child] = TableShape(
            tables[child].name,
            (*tables[child].columns, *(Column(o, kinds[k]) for o, k in
                                       zip(own, target.key, strict=True))),
            tables[child].key, tables[child].number, tables[child].text, tables[child].stamp)
        references.append(ForeignKey(
            oracle.Reference(tables[child].name, own, target.name, target.key,
                             on_delete),  # type: ignore[arg-type]
            f"fk{number}_{tables[child].name}", late))

    removing = ("cascade", "cascade", "set null", "set null", "restrict", "no action")
    looping = ("cascade", "set null", "restrict", "no action")
    for index in range(1, count):
        for parent in draw(st.lists(st.integers(0, index - 1), min_size=1, max_size=2)):
            add(index, parent, draw(st.sampled_from(removing)), late=False)
    if draw(st.integers(0, 2)) == 0:
        index = draw(st.integers(0, count - 1))
        add(index, index, draw(st.sampled_from(looping)),
            late=False)
    if count > 1 and draw(st.integers(0, 3)) == 0:
        child = draw(st.integers(0, count - 2))
        parent = draw(st.integers(child + 1, count - 1))
        add(child, parent, draw(st.sampled_from(looping)),
            late=kind != "sqlite")

    # rows
    rule_table = draw(st.sampled_from((0, 0, *range(count))))
    zone = draw(st.sampled_from(ZONES))
    period = draw(st.sampled_from(PERIODS))
    keep_period = draw(st.sampled_from(PERIODS))
    moments = [oracle.moment_before(oracle.span_of(_parse(p)), as_of, z)
               for p, z in ((period, zone), (keep_period, zone), (keep_period, "UTC"))]
    far = (datetime(2001, 1, 1, tzinfo=UTC), as_of + timedelta(days=1))
    ages = {
        "stamp": st.sampled_from(
            [*(m.local + d for m in moments for d in (-SECOND, timedelta(0), SECOND)), None,
             *(f.replace(tzinfo=None) for f in far)]),
        "stamptz": st.sampled_from(
            [*(m.aware.astimezone(UTC) + d for m in moments
               for d in (-SECOND, timedelta(0), SECOND)), None, *far]),
        "date": st.sampled_from(
            [*(m.day + d for m in moments for d in (-DAY, timedelta(0), DAY)), None,
             *(f.date() for f in far)]),
    }
    rows: dict[str, list[dict[str, object]]] = {}
    for index, table in enumerate(tables):
        size = draw(st.integers(2 if index == rule_table else 0, 8))
        keys: list[tuple[object, ...]]
        if table.key == ("ka", "code"):
            keys = draw(st.lists(st.tuples(st.integers(1, 3), st.sampled_from("abcd")),
                                 min_size=size, max_size=size, unique=True))
        elif len(table.key) == 2:
            keys = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)),
                                 min_size=size, max_size=size, unique=True))
        elif table.columns[0].kind == "text":
            keys = [(k,) for k in draw(st.lists(st.text("abcd", min_size=1, max_size=3),
                                                min_size=size, max_size=size, unique=True))]
        else:
            keys = [(k,) for k in draw(st.lists(st.integers(1, 40), min_size=size,
                                                max_size=size, unique=True))]
        rows[table.name] = [
            {**dict(zip(table.key, key, strict=True)),
             table.number: draw(st.one_of(st.none(), st.integers(-2, 3))),
             table.text: draw(st.one_of(st.none(), st.text("abc", max_size=2))),
             table.stamp: draw(ages[_kind_of(table, table.stamp)])}
            for key in keys]
    for fk in references:
        ref = fk.reference
        parents = [tuple(r[c] for c in ref.parent_columns) for r in rows[ref.parent]]
        for row in rows[ref.table]:
            own = tuple(row[c] for c in tables_by_name(tables)[ref.table].key)
            choices = [p for p in parents if not (ref.table == ref.parent and p == own)]
            chosen = (draw(st.sampled_from(choices))
                      if choices and draw(st.integers(0, 3)) != 3 else None)
            values = list(chosen or (None,) * len(ref.columns))
            if len(values) > 1 and draw(st.integers(0, 5)) == 0:
                # MATCH SIMPLE: a reference with a NULL in it references nothing, unchecked.
                values = [None, chosen[1] if chosen else None]
            for column, value in zip(ref.columns, values, strict=True):
                row[column] = value

    # the policy
    target = tables[rule_table]
    rule: dict[str, Any] = {
        "id": "oracle-rule", "description": "Generated.", "store": "app", "table": target.name,
        "age": {"column": target.stamp, "older_than": period, "timezone": zone},
        "limits": {"max_rows": 10_000, "max_percent": 100},
    }
    if draw(st.booleans()):
        rule["where"] = draw(_filter(target))
    action = draw(st.sampled_from(("refuse", "refuse", "delete", "quarantine")))
    rule["action"] = ({"type": "quarantine", "release_after": "1 month"}
                      if action == "quarantine" else {"type": "delete", "on_children": action})
    holds, retains = [], []
    for number in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from(tables))
        hold: dict[str, Any] = {"id": f"hold-{number}", "reason": "Litigation.", "store": "app",
                                "table": table.name}
        if draw(st.integers(0, 2)):
            hold["where"] = draw(_filter(table))
        if draw(st.integers(0, 3)) == 0:
            hold["expires"] = (as_of.date() + draw(st.sampled_from((-DAY, DAY * 0, DAY)))
                               ).isoformat()
        holds.append(hold)
    for number in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from(tables))
        keep: dict[str, Any] = {"id": f"keep-{number}", "reason": "Tax law.", "store": "app",
                                "table": table.name, "column": table.stamp, "for": keep_period,
                                "timezone": draw(st.sampled_from((zone, "UTC")))}
        # A whole-table minimum longer than the rule's period is refused by the loader.
        if table is target or draw(st.booleans()):
            keep["where"] = draw(_filter(table))
        retains.append(keep)
    policy = {"rules": [rule], "holds": holds, "retain": retains}
    return Shape(tuple(tables), tuple(references), rows, policy, as_of)


def _kind_of(table: TableShape, column: str) -> str:
    return next(c.kind for c in table.columns if c.name == column)


def tables_by_name(tables: Sequence[TableShape]) -> dict[str, TableShape]:
    """The tables by name."""
    return {t.name: t for t in tables}


def _parse(text: str) -> object:
    from retentiond.policy.periods import Period  # noqa: PLC0415 - parsing words only

    return Period.parse(text)


# -- loading into a backend -------------------------------------------------------------------

TYPES = {
    "sqlite": {"int": "INTEGER", "text": "VARCHAR(8)", "stamp": "DATETIME", "date": "DATE"},
    "postgresql": {"int": "INTEGER", "text": "VARCHAR(8)", "stamp": "TIMESTAMP", "date": "DATE",
                   "stamptz": "TIMESTAMP WITH TIME ZONE"},
    "mariadb": {"int": "INTEGER", "text": "VARCHAR(8)", "stamp": "DATETIME", "date": "DATE"},
}


def quote(kind: str, name: str) -> str:
    """An identifier quoted for the backend (names are plain letters, digits, underscores)."""
    return f"`{name}`" if kind == "mariadb" else f'"{name}"'


def ddl(shape: Shape, kind: str) -> list[str]:
    """CREATE TABLE statements (foreign keys inline) and ALTER TABLEs for the late ones."""
    q = lambda name: quote(kind, name)  # noqa: E731 - a short local alias
    statements = []
    for table in shape.tables:
        parts = [f"{q(c.name)} {TYPES[kind][c.kind]} {'NULL' if c.nullable else 'NOT NULL'}"
                 for c in table.columns]
        parts.append(f"PRIMARY KEY ({', '.join(map(q, table.key))})")
        parts.extend(_constraint(fk, q) for fk in shape.foreign_keys
                     if fk.reference.table == table.name and not fk.late)
        statements.append(f"CREATE TABLE {q(table.name)} ({', '.join(parts)})")
    statements.extend(f"ALTER TABLE {q(fk.reference.table)} ADD {_constraint(fk, q)}"
                      for fk in shape.foreign_keys if fk.late)
    return statements


def _constraint(fk: ForeignKey, q: Any) -> str:
    ref = fk.reference
    return (f"CONSTRAINT {q(fk.name)} FOREIGN KEY ({', '.join(map(q, ref.columns))}) "
            f"REFERENCES {q(ref.parent)} ({', '.join(map(q, ref.parent_columns))}) "
            f"ON DELETE {ref.on_delete.upper()}")


def load(engine: sa.Engine, shape: Shape, kind: str) -> None:
    """Create the tables and insert the rows: references first NULL, then set in place."""
    with engine.begin() as connection:
        for statement in ddl(shape, kind):
            connection.exec_driver_sql(statement)
    metadata = sa.MetaData()
    reflected = {t.name: sa.Table(t.name, metadata, autoload_with=engine) for t in shape.tables}
    referencing = {c for fk in shape.foreign_keys for c in
                   ((fk.reference.table, col) for col in fk.reference.columns)}
    with engine.begin() as connection:
        for table in shape.tables:
            rows = shape.rows[table.name]
            if rows:
                connection.execute(reflected[table.name].insert(), [
                    {k: (None if (table.name, k) in referencing else v) for k, v in row.items()}
                    for row in rows])
        for table in shape.tables:
            target = reflected[table.name]
            for row in shape.rows[table.name]:
                values = {k: v for k, v in row.items() if (table.name, k) in referencing
                          and v is not None}
                if values:
                    connection.execute(sa.update(target).where(
                        *(target.c[c] == row[c] for c in table.key)).values(values))


def contents(engine: sa.Engine, shape: Shape) -> dict[str, dict[oracle.Key, dict[str, object]]]:
    """Every row of every generated table, by primary key."""
    found = {}
    metadata = sa.MetaData()
    with engine.connect() as connection:
        for table in shape.tables:
            reflected = sa.Table(table.name, metadata, autoload_with=connection)
            found[table.name] = {tuple(row[c] for c in table.key): dict(row)
                                 for row in connection.execute(sa.select(reflected)).mappings()}
    return found


def by_key(shape: Shape, tables: Mapping[str, Sequence[Mapping[str, object]]]
           ) -> dict[str, dict[tuple[object, ...], dict[str, object]]]:
    """The oracle's rows, by primary key, as :func:`contents` reads them from the backend."""
    return {t.name: {tuple(row[c] for c in t.key): dict(row) for row in tables[t.name]}
            for t in shape.tables}


# -- a trial: the engine and a ledger over one loaded shape -----------------------------------

ROOMY = Defaults(batch_size=7, max_rows=10_000, max_percent=100)


@dataclass
class Trial:
    """An Engine over the shape's policy and the backend at ``url``, with its own ledger."""

    engine: Engine
    ledger: AuditLedger
    policies: PolicySet
    rule: Rule

    def run(self, as_of: datetime) -> RuleReport:
        """Enforce the rule once."""
        return RuleRun(self.engine, self.ledger, self.rule, as_of=as_of, run_id="run-1",
                       options=Options(sleep=lambda _: None))()

    def outcomes(self) -> list[Mapping[str, Any]]:
        """Bodies of the applied batch outcomes, in order."""
        return [r.entry.body for r in self.ledger.records()
                if r.entry.kind is Kind.OUTCOME and r.entry.body.get("status") == "applied"]


@contextmanager
def trial(url: str, shape: Shape, directory: Path) -> Iterator[Trial]:
    """A Trial over ``url`` with the shape's policy written under ``directory``."""
    directory.mkdir(parents=True)
    (directory / "policy.yaml").write_text(json.dumps(shape.policy, default=str),
                                           encoding="utf-8")
    policies = load_policies(directory)
    opened: list[SqlStore] = []

    def opener(name: str, store_settings: StoreSettings) -> SqlStore:
        store = SqlStore(name, store_settings)
        opened.append(store)
        return store

    registry = Stores({"app": StoreSettings(url=url)}, opener)
    state = StateDB(f"sqlite:///{directory / 'state.db'}")
    try:
        problems = [str(p) for p in validate_live(policies, registry)]
        assert [] == problems, shape.describe()
        engine = Engine(policies, registry, ROOMY)
        yield Trial(engine, AuditLedger(state), policies, policies.rule("oracle-rule"))
    finally:
        registry.close()
        state.close()
