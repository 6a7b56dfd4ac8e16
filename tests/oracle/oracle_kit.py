"""Generated schemas, data and policies, loaded into a real backend and judged by the oracle.

A :class:`Shape` is everything one hypothesis example needs: tables with integer, composite or
text primary keys, foreign keys between them (chains, several paths to one table, a
self-reference, sometimes a cycle) with random ON DELETE, rows with NULLs and ages around the
cutoffs, one rule, and holds and minimum retentions.  On PostgreSQL, half the shapes of two or
more tables partition one non-root table (``PARTITION BY RANGE`` on its age, integer or key
column, 2-3 ranges and a default, a third of them with one range sub-partitioned by LIST or
RANGE on another column); its primary key takes the partitioning columns.  Its foreign keys
are declared on it or on its partitions (each leaf, or each top-level partition), sometimes
one leaf lacking the key or declaring another ON DELETE; holds and retentions may name it or
any of its partitions.  :func:`shapes` draws them; :func:`load`
creates and fills the tables on a backend; :class:`Trial` builds an Engine and a ledger over a
shape and reads the tables back.

Flags named ``WITH_...`` switch on shapes that the current code is known to get wrong (see
the explicit examples in ``test_findings.py``); re-enable them once those are fixed.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st

from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB
from retentiond.policy import oracle
from retentiond.policy.loader import load_policies
from retentiond.policy.model import PolicySet, Rule
from retentiond.run.enforce import Options, RuleReport, RuleRun
from retentiond.run.engine import Engine
from retentiond.settings import Defaults
from retentiond.stores.registry import Stores
from retentiond.stores.sql import SqlStore, SqlStoreSettings
from retentiond.validation import validate_live

# -- switches for shapes the current code is known to get wrong ------------------------------

WITH_UNBLOCKING = os.environ.get("RETENTIOND_ORACLE_UNBLOCKING") == "1"
"""Shapes where one batch's deletions change which later rows are eligible: see test_findings."""
WITH_PARTITIONS = os.environ.get("RETENTIOND_ORACLE_PARTITIONS", "1") == "1"
"""On PostgreSQL, sometimes make one child table declaratively partitioned (see shapes)."""
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
    partitioning: oracle.Partitioning | None = None
    """PostgreSQL only: PARTITION BY RANGE, its partitions (maybe one sub-partitioned)."""

    def names(self) -> tuple[str, ...]:
        """The table and all its partitions, at every level."""
        return (self.name, *(self.partitioning.names() if self.partitioning else ()))

    def decode(self, key: Sequence[object]) -> tuple[object, ...]:
        """A primary key as the ledger writes it (times as ISO 8601 text), read back."""
        kinds = {c.name: c.kind for c in self.columns}
        return tuple(
            (date.fromisoformat(v) if kinds[c] == "date" else datetime.fromisoformat(v))
            if isinstance(v, str) and kinds[c] in {"date", "stamp", "stamptz"} else v
            for c, v in zip(self.key, key, strict=True))


@dataclass(frozen=True)
class ForeignKey:
    """A generated foreign key; ``late`` ones are added after both tables exist.

    Its reference's table may be a partition the key is declared on.
    """

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
            tuple(oracle.Table(t.name, tuple(c.name for c in t.columns), t.key, t.partitioning)
                  for t in self.tables),
            tuple(fk.reference for fk in self.foreign_keys))

    def table(self, name: str) -> TableShape:
        """The table called ``name``."""
        return next(t for t in self.tables if t.name == name)

    def describe(self) -> str:
        """A readable summary, for failure messages."""
        fks = [f"{r.table}({','.join(r.columns)})->{r.parent} {r.on_delete}"
               for r in (fk.reference for fk in self.foreign_keys)]
        parts = {t.name: t.partitioning for t in self.tables if t.partitioning}
        return json.dumps({"tables": [t.name for t in self.tables], "fks": fks,
                           "partitions": parts,
                           "rows": self.rows, "policy": self.policy,
                           "as_of": self.as_of.isoformat()}, default=_described, indent=1)

    @property
    def partitioned(self) -> bool:
        """Whether any table is partitioned."""
        return any(t.partitioning for t in self.tables)

    def partition_features(self) -> list[str]:
        """Which partitioned sub-shapes the example has (for hypothesis events)."""
        partitioned = {t.name for t in self.tables if t.partitioning}
        if not partitioned:
            return []
        logical = {t.name for t in self.tables}
        schema = self.schema
        links = [link for t in self.tables for link in schema.referencing(t.name)]
        guarded = [g["table"] for g in (*self.policy["holds"], *self.policy["retain"])]
        found = {
            "sub-partitioned": any(p.sub for t in self.tables if t.partitioning
                                   for p in t.partitioning.partitions),
            "rule on it": self.policy["rules"][0]["table"] in partitioned,
            "it is referenced": any(fk.reference.parent in partitioned
                                    for fk in self.foreign_keys),
            "its keys on partitions": any(fk.reference.table not in logical
                                          for fk in self.foreign_keys),
            "a leaf lacks a key": any(not link.enforced for link in links),
            "leaves differ in ON DELETE": len({
                (link.reference.table, link.reference.columns, link.reference.on_delete)
                for link in links if link.enforced and link.leaves is not None}) > len({
                (link.reference.table, link.reference.columns)
                for link in links if link.enforced and link.leaves is not None}),
            "guard on a partition": any(name not in logical for name in guarded),
            "guard on it": any(name in partitioned for name in guarded),
        }
        return [name for name, there in found.items() if there]


def _described(value: object) -> object:
    if isinstance(value, oracle.Partitioning | oracle.Partition):
        return {k: v for k, v in vars(value).items() if v not in (None, False)}
    return str(value)


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

    # Phase 1 of partitioning (PostgreSQL): which table, on which columns; the key grows.
    plan = draw(_partition_plan(tables)) if kind == "postgresql" and WITH_PARTITIONS else None
    if plan is not None:
        index, roles, _ = plan
        table = tables[index]
        keyed = tuple(_column_of(table, role) for role in roles)
        tables[index] = replace(
            table, columns=tuple(replace(c, nullable=False) if c.name in keyed else c
                                 for c in table.columns),
            key=(*table.key, *(c for c in keyed if c not in table.key)))

    references: list[ForeignKey] = []

    def add(child: int, parent: int, on_delete: str, *, late: bool) -> None:
        target = tables[parent]
        number = len(references)
        own = tuple(f"r{number}_{c}" for c in target.key)
        kinds = {c.name: c.kind for c in target.columns}
        tables[child] = replace(
            tables[child],
            columns=(*tables[child].columns, *(Column(o, kinds[k]) for o, k in
                                               zip(own, target.key, strict=True))))
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
    age_values: dict[str, list[Any]] = {
        "stamp": [*(m.local + d for m in moments for d in (-SECOND, timedelta(0), SECOND)), None,
                  *(f.replace(tzinfo=None) for f in far)],
        "stamptz": [*(m.aware.astimezone(UTC) + d for m in moments
                      for d in (-SECOND, timedelta(0), SECOND)), None, *far],
        "date": [*(m.day + d for m in moments for d in (-DAY, timedelta(0), DAY)), None,
                 *(f.date() for f in far)],
    }
    ages = {name: st.sampled_from(values) for name, values in age_values.items()}
    if plan is not None:  # phase 2: the bounds, from the values rows take
        index, roles, sub_kind = plan
        tables[index] = replace(tables[index], partitioning=draw(
            _partitioning(tables[index], roles, sub_kind, age_values)))
    rows: dict[str, list[dict[str, object]]] = {}
    for index, table in enumerate(tables):
        size = draw(st.integers(2 if index == rule_table else 0, 8))
        keys: list[tuple[object, ...]]
        base = tuple(c for c in table.key if c in {"id", "ka", "kb", "code"})
        required = {c.name for c in table.columns if not c.nullable}
        if base == ("ka", "code"):
            keys = draw(st.lists(st.tuples(st.integers(1, 3), st.sampled_from("abcd")),
                                 min_size=size, max_size=size, unique=True))
        elif len(base) == 2:
            keys = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)),
                                 min_size=size, max_size=size, unique=True))
        elif table.columns[0].kind == "text":
            keys = [(k,) for k in draw(st.lists(st.text("abcd", min_size=1, max_size=3),
                                                min_size=size, max_size=size, unique=True))]
        else:
            keys = [(k,) for k in draw(st.lists(st.integers(1, 40), min_size=size,
                                                max_size=size, unique=True))]
        stamps = ages[_kind_of(table, table.stamp)]
        numbers = st.integers(-2, 3)
        if table.stamp in required:
            stamps = st.sampled_from([v for v in age_values[_kind_of(table, table.stamp)]
                                      if v is not None])
        rows[table.name] = [
            {**dict(zip(base, key, strict=True)),
             table.number: draw(numbers if table.number in required
                                else st.one_of(st.none(), numbers)),
             table.text: draw(st.one_of(st.none(), st.text("abc", max_size=2))),
             table.stamp: draw(stamps)}
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
                values = [None, *(chosen[1:] if chosen else (None,) * (len(values) - 1))]
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
                                "table": draw(_guarded_name(table))}
        if draw(st.integers(0, 2)):
            hold["where"] = draw(_filter(table))
        if draw(st.integers(0, 3)) == 0:
            hold["expires"] = (as_of.date() + draw(st.sampled_from((-DAY, DAY * 0, DAY)))
                               ).isoformat()
        holds.append(hold)
    for number in range(draw(st.integers(0, 2))):
        table = draw(st.sampled_from(tables))
        keep: dict[str, Any] = {"id": f"keep-{number}", "reason": "Tax law.", "store": "app",
                                "table": draw(_guarded_name(table)), "column": table.stamp,
                                "for": keep_period,
                                "timezone": draw(st.sampled_from((zone, "UTC")))}
        # A whole-table minimum longer than the rule's period is refused by the loader.
        if table is target or draw(st.booleans()):
            keep["where"] = draw(_filter(table))
        retains.append(keep)
    policy = {"rules": [rule], "holds": holds, "retain": retains}
    declared = [d for fk in references for d in draw(_declarations(fk, tables))]
    return Shape(tuple(tables), tuple(declared), rows, policy, as_of)


# -- partitioned tables (PostgreSQL) ----------------------------------------------------------

ROLES = ("stamp", "stamp", "number", "key")
"""What a partitioned table is partitioned by: its age column, its integer column, its key."""


def _column_of(table: TableShape, role: str) -> str:
    if role == "stamp":
        return table.stamp
    if role == "key" and table.key[0] in {"id", "ka"}:
        return table.key[0]
    return table.number


@st.composite
def _partition_plan(draw: st.DrawFn, tables: Sequence[TableShape]
                    ) -> tuple[int, tuple[str, ...], str] | None:
    """Maybe one non-root table to partition, half the time.

    Its index, the roles of the columns partitioning it (top level, then a sub-partition's,
    if any) and the sub-partitioning kind.
    """
    if len(tables) < 2 or draw(st.integers(0, 1)) == 0:
        return None
    index = draw(st.integers(1, len(tables) - 1))
    top = _column_of(tables[index], draw(st.sampled_from(ROLES)))
    roles = [r for r in ("stamp", "number", "key") if _column_of(tables[index], r) != top]
    top_role = next(r for r in ("stamp", "number", "key") if _column_of(tables[index], r) == top)
    if draw(st.integers(0, 2)) != 0:
        return index, (top_role,), ""
    sub = draw(st.sampled_from(roles))
    sub_kind = "range" if sub == "stamp" else draw(st.sampled_from(("list", "range")))
    return index, (top_role, sub), sub_kind


def _domain(table: TableShape, role: str, ages: Mapping[str, Sequence[Any]]) -> list[Any]:
    """The values rows of ``table`` take in the column of ``role``, in order."""
    column = _column_of(table, role)
    if column == table.stamp:
        values = [v for v in ages[_kind_of(table, column)] if v is not None]
        return sorted(set(values))
    if column == table.number:
        return list(range(-2, 4))
    return list(range(1, 41 if column == "id" else 5))


@st.composite
def _ranges(draw: st.DrawFn, name: str, domain: Sequence[Any], count: int
            ) -> list[oracle.Partition]:
    points = sorted(draw(st.lists(st.sampled_from(domain), min_size=count + 1,
                                  max_size=count + 1, unique=True)))
    found = [oracle.Partition(f"{name}{n}", low, high)
             for n, (low, high) in enumerate(itertools.pairwise(points))]
    if draw(st.integers(0, 3)) == 0:
        found[0] = replace(found[0], low=None)
    if draw(st.integers(0, 4)) == 0:
        found[-1] = replace(found[-1], high=None)
    return found


@st.composite
def _partitioning(draw: st.DrawFn, table: TableShape, roles: Sequence[str], sub_kind: str,
                  ages: Mapping[str, Sequence[Any]]) -> oracle.Partitioning:
    """2-3 range partitions and a default; maybe one range partition sub-partitioned."""
    top = draw(_ranges(f"{table.name}_p", _domain(table, roles[0], ages),
                       draw(st.integers(2, 3))))
    if len(roles) > 1:
        which = draw(st.integers(0, len(top) - 1))
        prefix = f"{top[which].name}_s"
        domain = _domain(table, roles[1], ages)
        if sub_kind == "list":
            values = draw(st.lists(st.sampled_from(domain), min_size=2, max_size=4, unique=True))
            cut = draw(st.integers(1, len(values) - 1))
            subs = [oracle.Partition(f"{prefix}0", values=tuple(values[:cut])),
                    oracle.Partition(f"{prefix}1", values=tuple(values[cut:]))]
        else:
            subs = draw(_ranges(prefix, domain, draw(st.integers(1, 2))))
        subs.append(oracle.Partition(f"{prefix}d", default=True))
        kind = "list" if sub_kind == "list" else "range"
        top[which] = replace(top[which], sub=oracle.Partitioning(
            _column_of(table, roles[1]), kind, tuple(subs)))  # type: ignore[arg-type]
    top.append(oracle.Partition(f"{table.name}_pd", default=True))
    return oracle.Partitioning(_column_of(table, roles[0]), "range", tuple(top))


@st.composite
def _guarded_name(draw: st.DrawFn, table: TableShape) -> str:
    """A table for a hold or minimum retention: the table, or one of its partitions."""
    if table.partitioning is None or draw(st.integers(0, 2)) == 0:
        return table.name
    return draw(st.sampled_from(table.partitioning.names()))


OTHER_ON_DELETE = ("cascade", "set null", "restrict", "no action")


@st.composite
def _declarations(draw: st.DrawFn, fk: ForeignKey, tables: Sequence[TableShape]
                  ) -> list[ForeignKey]:
    """Where a key of a partitioned table is declared: on it, or on its partitions.

    On partitions: each leaf (or each top-level partition, a sub-partitioned one declaring it
    for its leaves), sometimes leaving one out, sometimes with another ON DELETE on one.
    """
    ref = fk.reference
    partitioning = tables_by_name(tables)[ref.table].partitioning
    if partitioning is None or draw(st.integers(0, 2)) == 0:
        return [fk]
    if draw(st.booleans()) and any(p.sub for p in partitioning.partitions):
        places = [p.name for p in partitioning.partitions]
    else:
        places = list(partitioning.leaves())
    if draw(st.integers(0, 2)) == 0:
        places.remove(draw(st.sampled_from(places)))
    odd = draw(st.sampled_from(places)) if draw(st.integers(0, 2)) == 0 else None
    other = draw(st.sampled_from([o for o in OTHER_ON_DELETE if o != ref.on_delete]))
    return [ForeignKey(replace(ref, table=place,
                               on_delete=other if place == odd  # type: ignore[arg-type]
                               else ref.on_delete),
                       f"{fk.name}_{place.rsplit('_', 1)[-1]}", fk.late)
            for place in places]


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
        by = _partition_by(table.partitioning, q)
        statements.append(f"CREATE TABLE {q(table.name)} ({', '.join(parts)}){by}")
        if table.partitioning is not None:
            statements.extend(_partitions(table.name, table.partitioning, q))
    logical = {t.name for t in shape.tables}
    statements.extend(f"ALTER TABLE {q(fk.reference.table)} ADD {_constraint(fk, q)}"
                      for fk in shape.foreign_keys
                      if fk.reference.table not in logical and not fk.late)
    statements.extend(f"ALTER TABLE {q(fk.reference.table)} ADD {_constraint(fk, q)}"
                      for fk in shape.foreign_keys if fk.late)
    return statements


def _partition_by(partitioning: oracle.Partitioning | None, q: Any) -> str:
    if partitioning is None:
        return ""
    return f" PARTITION BY {partitioning.kind.upper()} ({q(partitioning.column)})"


def _partitions(parent: str, partitioning: oracle.Partitioning, q: Any) -> list[str]:
    """CREATE TABLE ... PARTITION OF for every partition, sub-partitions after theirs."""
    statements = []
    for partition in partitioning.partitions:
        if partition.default:
            bounds = "DEFAULT"
        elif partition.values is not None:
            bounds = f"FOR VALUES IN ({', '.join(map(_literal, partition.values))})"
        else:
            low = "MINVALUE" if partition.low is None else _literal(partition.low)
            high = "MAXVALUE" if partition.high is None else _literal(partition.high)
            bounds = f"FOR VALUES FROM ({low}) TO ({high})"
        statements.append(f"CREATE TABLE {q(partition.name)} PARTITION OF {q(parent)} {bounds}"
                          f"{_partition_by(partition.sub, q)}")
        if partition.sub is not None:
            statements.extend(_partitions(partition.name, partition.sub, q))
    return statements


def _literal(value: object) -> str:
    """A partition bound: an integer, or a date or time in quotes."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return f"'{value.isoformat(sep=' ') if isinstance(value, datetime) else value}'"
    raise TypeError(f"no partition bound of {value!r}")


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
    schema = shape.schema  # keys declared on partitions are the logical table's columns
    referencing = {c for fk in shape.foreign_keys for c in
                   ((schema.logical(fk.reference.table).name, col)
                    for col in fk.reference.columns)}
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


def stored_in(engine: sa.Engine, shape: Shape) -> dict[str, dict[oracle.Key, str]]:
    """The leaf partition each row of each partitioned table is stored in (PostgreSQL)."""
    found = {}
    with engine.connect() as connection:
        for table in shape.tables:
            if table.partitioning is None:
                continue
            columns = ", ".join(f'"{c}"' for c in table.key)
            rows = connection.exec_driver_sql(
                f'SELECT c.relname, {columns} FROM "{table.name}" t '
                "JOIN pg_catalog.pg_class c ON c.oid = t.tableoid")
            found[table.name] = {tuple(row[1:]): row[0] for row in rows}
    return found


def routed(shape: Shape) -> dict[str, dict[oracle.Key, str]]:
    """The leaf partition the oracle routes each row of each partitioned table to."""
    schema = shape.schema
    return {t.name: {schema.table(t.name).key(row): schema.places(t.name, row)[-1]
                     for row in shape.rows[t.name]}
            for t in shape.tables if t.partitioning is not None}


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

    def opener(name: str, store_settings: SqlStoreSettings) -> SqlStore:
        store = SqlStore(name, store_settings)
        opened.append(store)
        return store

    registry = Stores({"app": SqlStoreSettings(url=url)}, opener)
    state = StateDB(f"sqlite:///{directory / 'state.db'}")
    try:
        problems = [str(p) for p in validate_live(policies, registry)]
        assert [] == problems, shape.describe()
        engine = Engine(policies, registry, ROOMY)
        yield Trial(engine, AuditLedger(state), policies, policies.rule("oracle-rule"))
    finally:
        registry.close()
        state.close()
