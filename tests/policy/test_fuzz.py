"""Generated policy files never crash or hang ``validate`` or ``plan`` (issue 15, item 9).

Hypothesis builds policy files from the real grammar (rules with every action and its options,
filters, schedules, limits, holds, retentions), then spoils some of them: a value swapped for
a hostile one (control characters, right-to-left marks, 70,000 characters, SQL, huge,
negative and non-finite numbers, wrong types), unknown keys, missing keys, filters nested past
the limit, shared values written as YAML anchors and aliases, alias bombs, and bytes spliced
into the text (invalid UTF-8, NUL, tags, directives, stray indicators, cuts).  Whatever it is:

- ``validate`` exits 0 or 2 in bounded time and never prints a traceback;
- on exit 2 every line of stderr is one problem (``error: ...``, one line, readable length),
  then the count of problems, which matches;
- when ``validate`` says ok, ``plan`` on the real SQLite store exits 0 with its JSON.

The CLI runs in this process through ``main`` (as the installed command does, its error
handling included); a few examples also run as real subprocesses.  ``make test`` runs a
bounded, derandomized set; ``RETENTIOND_FUZZ=1`` (or a number of examples) runs a long,
random one.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from retentiond.cli import main

LONG = os.environ.get("RETENTIOND_FUZZ", "")
EXAMPLES = (int(LONG) if LONG.isdigit() and int(LONG) > 1 else 5000) if LONG else 300
SUBPROCESS_EXAMPLES = 40 if LONG else 4
BOUND = 20.0
"""Seconds one command may take on one generated file (the hostile ones took over 60 s)."""
LONGEST_LINE = 1000
"""An error line names what is wrong; a hostile value is cut short, never echoed whole."""
AS_OF = "2026-03-15T12:00:00+00:00"
COUNT = re.compile(r"^(\d+) problem\(s\); nothing was run$")

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                print_blob=True, suppress_health_check=list(HealthCheck))

# -- the store the rules are checked against ---------------------------------------------------

TABLES = {
    "emails": {"id": "INTEGER PRIMARY KEY", "customer_id": "INTEGER NOT NULL",
               "email": "VARCHAR(200)", "subject": "TEXT", "ip": "VARCHAR(45)",
               "score": "REAL", "sent_at": "DATETIME", "sent_on": "DATE"},
    "tickets": {"id": "INTEGER PRIMARY KEY", "email_id": "INTEGER REFERENCES emails(id)",
                "status": "VARCHAR(20) NOT NULL", "body": "TEXT", "closed_at": "DATETIME"},
}
ROWS = {
    "emails": [(1, 4711, "a@example.com", "hello", "10.0.0.1", 1.5, "2024-01-01 10:00:00",
                "2024-01-01"),
               (2, 5, None, None, None, None, None, None),
               (3, -9223372036854775808, "ü@exämple.com", "x" * 300, "::1", -0.0,
                "0001-01-01 00:00:00", "9999-12-31"),
               (4, 9223372036854775807, "b@example.com", "", "", 1e308, "2026-03-15 12:00:00",
                "2026-03-15")],
    "tickets": [(1, 1, "open", "help", None), (2, 3, "closed", None, "2025-01-01 00:00:00"),
                (3, None, "closed", "", "2000-02-29 23:59:59")],
}


@dataclass(frozen=True)
class Site:
    """A SQLite store, a pseudonym key, a config naming them, and its policy directory."""

    config: Path
    policies: Path

    def write(self, content: bytes) -> None:
        """Make ``content`` the policy directory's only file."""
        (self.policies / "fuzz.yaml").write_bytes(content)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """One site for every example: the store is only read, the policy file rewritten."""
    root = tmp_path_factory.mktemp("fuzz")
    store = root / "app.db"
    with closing(sqlite3.connect(store)) as connection, connection:
        for table, columns in TABLES.items():
            connection.execute(f"CREATE TABLE {table} ("
                               + ", ".join(f"{c} {t}" for c, t in columns.items()) + ")")
            marks = ", ".join("?" * len(columns))
            connection.executemany(f"INSERT INTO {table} VALUES ({marks})", ROWS[table])
    (root / "key").write_text("k" * 64, encoding="utf-8")
    policies = root / "policies"
    policies.mkdir()
    config = root / "retentiond.toml"
    config.write_text(
        f'policy_dir = "{policies}"\nstate_url = "sqlite:///{root}/state.db"\n'
        f'log_level = "warning"\n\n[stores.app]\nurl = "sqlite:///{store}"\n\n'
        f'[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\nfile = "{root}/key"\n',
        encoding="utf-8")
    return Site(config, policies)


# -- values, good and hostile ------------------------------------------------------------------

HUGE = "A" * 70_000
HOSTILE_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8", categories=("Cc", "Cf", "Zl", "Zp", "Zs", "Co")),
            min_size=1, max_size=10),
    st.sampled_from([
        "", " ", "\x00", "\t", "\r\n", "\u202e", "\ufeff", "\u2028", "\x1b[31m", "ü", "🗑️",
        "'; DROP TABLE emails; --", '" OR 1=1 --', "emails; DELETE FROM emails", "../../etc",
        "{pk}", "{0}{pk}{}", "%s%n", "*", "&a", "!!python/object:os.system", "null", "~",
        "yes", "0x1F", "1e400", ".nan", "-.inf", "2027-02-30", "9999-99-99", "12 months",
        "1 year and 6 months", "0 days", "-1 days", "1 fortnight", "10000 years",
        "100000000000000000000 years", "Europe/Berlin", "Etc/GMT+99", "../../../etc/passwd",
        "UTC\x00", "A" * 300, HUGE, "1 day " * 2000, "0 3 * * *", "99 99 99 99 99",
        "*/0 * * * *", "schema.table", "a.b.c", "emails ", "Emails"]),
)
HOSTILE_NUMBER = st.one_of(
    st.integers(), st.floats(),
    st.sampled_from([0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**19, 10**20, 10**400,
                     math.inf, -math.inf, math.nan, 1e-320, -0.0, 1e308]))
SCALAR = st.one_of(
    st.none(), st.booleans(), HOSTILE_NUMBER, HOSTILE_TEXT,
    st.dates(), st.datetimes(),
    st.sampled_from([date(1, 1, 1), date(9999, 12, 31), datetime(1, 1, 1),  # noqa: DTZ001
                     datetime(9999, 12, 31, 23, 59, 59)]))  # noqa: DTZ001
HOSTILE = st.one_of(
    SCALAR,
    st.lists(SCALAR, max_size=4),
    st.dictionaries(HOSTILE_TEXT, SCALAR, max_size=3),
    st.sampled_from([[], {}, [[[[]]]], {"not": {}}, {"all": []}]))

# -- the grammar -------------------------------------------------------------------------------

KINDS = {"INTEGER": "number", "REAL": "number", "VARCHAR": "text", "TEXT": "text",
         "DATETIME": "moment", "DATE": "moment"}
"""What values fit a column, by the first word of its type."""
UNITS = ["minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month",
         "months", "year", "years"]
AMOUNT = st.one_of(*[st.integers(1, 40)] * 6, st.sampled_from([999, 9999, 10**6]))
PERIOD = st.one_of(
    st.builds("{} {}".format, AMOUNT, st.sampled_from(UNITS)),
    st.builds("{} {}, and {} {}".format, AMOUNT, st.sampled_from(UNITS), AMOUNT,
              st.sampled_from(UNITS)),
    st.sampled_from(["12 months", "1 year 6 months", "30 days", "1000 years", "999 years"]))
ZONE = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                        "Pacific/Kiritimati", "Etc/GMT-14"])
OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null", "like"]
VALUES = {
    "number": st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False),
                        st.sampled_from([0, 4711, 2**63 - 1, -(2**63), 1e308, -0.0])),
    "text": st.one_of(st.text(max_size=20), st.sampled_from(["open", "%@example.com", "_"])),
    "moment": st.one_of(st.dates(), st.datetimes(),
                        st.sampled_from([date(1, 1, 1), date(9999, 12, 31)])),
}
ANY_VALUE = st.one_of(*VALUES.values(), st.booleans(), st.just(HUGE))


def _kind(table: str, column: str) -> str:
    return KINDS.get(TABLES[table].get(column, "TEXT").split("(")[0].split()[0], "text")


def _columns(table: str) -> st.SearchStrategy[str]:
    """A column of ``table``; now and then one it does not have."""
    return st.one_of(st.sampled_from(list(TABLES[table])) , st.sampled_from(list(TABLES[table])),
                     st.sampled_from(list(TABLES[table])), st.sampled_from(["missing", "Email"]))


def _value(draw: st.DrawFn, table: str, column: str) -> Any:
    fitting = VALUES[_kind(table, column)]
    return draw(st.one_of(fitting, fitting, fitting, ANY_VALUE))


@st.composite
def values(draw: st.DrawFn, table: str, column: str) -> Any:
    """A value for ``column`` of ``table``: mostly one that fits it."""
    return _value(draw, table, column)


@st.composite
def conditions(draw: st.DrawFn, table: str) -> dict[str, Any]:
    """One condition on a column of ``table``, its value fitting the operator (mostly)."""
    column = draw(_columns(table))
    op = draw(st.sampled_from(OPS))
    condition: dict[str, Any] = {"column": column, "op": op}
    if op in {"in", "not_in"}:
        condition["value"] = draw(st.one_of(
            *[st.lists(values(table, column), min_size=1, max_size=5)] * 6,
            st.just(list(range(1000))), st.just(list(range(1001)))))
    elif op == "like":
        condition["value"] = draw(st.text(max_size=10))
    elif op not in {"is_null", "not_null"}:
        condition["value"] = _value(draw, table, column)
    return condition


def filters(table: str) -> st.SearchStrategy[dict[str, Any]]:
    """Conditions on ``table`` combined with all, any and not."""
    return st.recursive(
        conditions(table),
        lambda inner: st.one_of(
            st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda item: {"not": item}, inner)),
        max_leaves=6)


def nested(depth: int) -> dict[str, Any]:
    """A filter ``depth`` levels of ``not`` deep (the limit is 64 levels of the whole file)."""
    node: dict[str, Any] = {"column": "id", "value": 1}
    for _ in range(depth):
        node = {"not": node}
    return node


@st.composite
def strategies(draw: st.DrawFn, table: str, column: str) -> dict[str, Any]:
    """An anonymize strategy for ``column``, mostly of a kind that fits it."""
    kind = _kind(table, column)
    name = draw(st.sampled_from({
        "number": ["nullify", "constant", "generalize", "mask"],
        "text": ["nullify", "constant", "mask", "pk_derived", "generalize"],
        "moment": ["nullify", "constant", "generalize"]}[kind]))
    strategy: dict[str, Any] = {"strategy": name}
    if name == "nullify" and draw(st.booleans()):
        strategy["fallback"] = _value(draw, table, column)
    elif name == "constant":
        strategy["value"] = _value(draw, table, column)
    elif name == "mask":
        strategy.update(draw(st.fixed_dictionaries({}, optional={
            "keep_last": st.integers(-2, 300), "char": st.sampled_from(["*", "#", "ü", "**"])})))
    elif name == "generalize":
        strategy.update(draw(st.one_of(
            st.fixed_dictionaries({"to": st.sampled_from(["month", "year", "network", "day"])}),
            st.fixed_dictionaries({"step": st.one_of(st.floats(), st.integers())}))))
    elif name == "pk_derived" and draw(st.booleans()):
        strategy["template"] = draw(st.sampled_from(
            ["erased+{pk}@example.invalid", "{pk}", "x{pk}{pk}", "{}{pk}", "no pk",
             "{pk}" + "x" * 300]))
    return strategy


@st.composite
def actions(draw: st.DrawFn, table: str) -> dict[str, Any]:
    """An action's options, from the options models of retentiond/actions."""
    kind = draw(st.sampled_from(["delete", "quarantine", "anonymize", "pseudonymize"]))
    if kind == "delete":
        return draw(st.fixed_dictionaries({"type": st.just("delete")}, optional={
            "on_children": st.sampled_from(["refuse", "delete"])}))
    if kind == "quarantine":
        return {"type": "quarantine", "release_after": draw(PERIOD)}
    columns = draw(st.lists(_columns(table), min_size=1, max_size=3, unique=True))
    if kind == "anonymize":
        return {"type": "anonymize",
                "columns": {c: draw(strategies(table, c)) for c in columns}}
    return {"type": "pseudonymize", "columns": {c: draw(st.fixed_dictionaries(
        {"domain": st.sampled_from(["customer-email", "ip", "customer-email", "ip", "Bad"])},
        optional={"length": st.one_of(st.integers(8, 52), st.integers(0, 60))}))
        for c in columns}}


SCHEDULE = st.one_of(
    st.fixed_dictionaries({"cron": st.sampled_from(
        ["0 3 * * *", "*/15 * * * *", "0 0 29 2 *", "59 23 31 12 6", "0 3 * * *", "0 3 * *",
         "@daily"])}),
    st.fixed_dictionaries({"every": st.builds("{} {}".format, st.integers(1, 100),
                                              st.sampled_from(UNITS[:8]))}),
    st.fixed_dictionaries({"every": PERIOD}))
AGE_COLUMNS = {table: [c for c in columns if _kind(table, c) == "moment"]
               for table, columns in TABLES.items()}


@st.composite
def rules(draw: st.DrawFn) -> dict[str, Any]:
    """A rule of retentiond/policy/model.py on one of the store's tables."""
    table = draw(st.sampled_from(list(TABLES)))
    rule = {"id": "", "description": draw(st.text(min_size=1, max_size=40)), "store": "app",
            "table": table,
            "age": draw(st.fixed_dictionaries(
                {"column": st.sampled_from(AGE_COLUMNS[table]), "older_than": PERIOD},
                optional={"timezone": ZONE})),
            "action": draw(actions(table))}
    rule.update(draw(st.fixed_dictionaries({}, optional={
        "where": filters(table),
        "subjects": st.dictionaries(st.sampled_from(["customer", "ticket"]),
                                    _columns(table), max_size=2),
        "schedule": SCHEDULE,
        "limits": st.fixed_dictionaries({}, optional={
            "max_rows": st.integers(0, 10**6), "max_percent": st.floats(0, 100)}),
        "batch_size": st.integers(0, 100_001),
        "throttle": st.floats(1e-9, 1e6),
        "enabled": st.booleans()})))
    return rule


@st.composite
def holds(draw: st.DrawFn) -> dict[str, Any]:
    """A legal hold on one of the store's tables."""
    table = draw(st.sampled_from(list(TABLES)))
    hold = {"id": "", "reason": draw(st.text(min_size=1, max_size=20)), "store": "app",
            "table": table}
    hold.update(draw(st.fixed_dictionaries({}, optional={
        "where": filters(table), "case": st.text(max_size=10),
        "expires": st.one_of(st.dates(), st.datetimes())})))
    return hold


@st.composite
def retentions(draw: st.DrawFn) -> dict[str, Any]:
    """A minimum retention on one of the store's tables."""
    table = draw(st.sampled_from(list(TABLES)))
    retention = {"id": "", "reason": draw(st.text(min_size=1, max_size=20)), "store": "app",
                 "table": table, "column": draw(st.sampled_from(AGE_COLUMNS[table])),
                 "for": draw(PERIOD)}
    retention.update(draw(st.fixed_dictionaries({}, optional={
        "timezone": ZONE, "where": filters(table)})))
    return retention


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A policy file's content: rules, holds and retentions, each with its own id."""
    count = draw(st.sampled_from([1, 1, 1, 2, 3, 4]))
    document = {"rules": draw(st.lists(rules(), min_size=count, max_size=count))}
    document.update(draw(st.fixed_dictionaries({}, optional={
        "holds": st.lists(holds(), max_size=2), "retain": st.lists(retentions(), max_size=2)})))
    for key, entries in document.items():
        for number, entry in enumerate(entries):
            entry["id"] = f"{key}-{number}"
    return document


# -- spoiling a document -----------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = (),
           seen: set[int] | None = None) -> Iterator[tuple[Any, ...]]:
    """Every path into ``node``; a value shared by several places is entered once."""
    seen = set() if seen is None else seen
    yield prefix
    if isinstance(node, dict | list) and id(node) not in seen:
        seen.add(id(node))
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _paths(value, (*prefix, key), seen)


def _replace(node: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        return {**node, head: _replace(node[head], rest, new)}
    return [*node[:head], _replace(node[head], rest, new), *node[head + 1:]]


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _bomb(levels: int) -> list[Any]:
    node: list[Any] = ["x"] * 9
    for _ in range(levels):
        node = [node] * 9  # one object nine times: the dumper writes anchors and aliases
    return node


@st.composite
def spoiled(draw: st.DrawFn, document: dict[str, Any]) -> Any:
    """``document`` with one to three of its values, keys or shapes made hostile."""
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        target = _at(document, path)
        how = draw(st.sampled_from(["value", "value", "unknown key", "drop key", "deep",
                                    "alias", "bomb"]))
        if how == "unknown key" and isinstance(target, dict):
            key = draw(st.one_of(HOSTILE_TEXT, st.sampled_from(
                ["after", "olderthan", "Id", "rule", "<<", "?"])))
            document = _replace(document, path, {**target, key: draw(HOSTILE)})
        elif how == "drop key" and isinstance(target, dict) and target:
            gone = draw(st.sampled_from(sorted(target, key=str)))
            document = _replace(document, path, {k: v for k, v in target.items() if k != gone})
        elif how == "deep":
            document = _replace(document, path, nested(draw(st.sampled_from([30, 63, 65, 300]))))
        elif how == "alias" and path:  # the same object elsewhere: written as an alias
            other = draw(st.sampled_from(paths))
            if other and other[: len(path)] != path and path[: len(other)] != other:
                document = _replace(document, other, target)
        elif how == "bomb":
            document = _replace(document, path, _bomb(draw(st.integers(1, 7))))
        else:
            document = _replace(document, path, draw(HOSTILE))
    return document


SPLICES = [
    b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\t", b"\r", b"\x1b",
    b"\xe2\x80\xa8", b": ", b"- ", b"{", b"]", b"&a ", b"*a", b"*nope",
    b"!!python/name:os.system ", b"!custom ", b"!!binary ", b"!!set ", b"!!omap ",
    b"%YAML 1.1\n---\n", b"%TAG ! tag:x,2000:\n---\n", b"\n---\n", b"\n...\n", b"? ",
    b"<<: *a\n", b"|\n", b">-\n", b"'", b'"', b"#", b"\\", b"\n    ", b"\n\t- x\n",
]


@st.composite
def policy_files(draw: st.DrawFn) -> bytes:
    """A policy file: mostly well-formed, often spoiled, sometimes cut or spliced as bytes."""
    document = draw(documents())
    if draw(st.booleans()):
        document = draw(spoiled(document))
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = draw(st.sampled_from([False, True, None]))
    yaml.width = 4096
    text = StringIO()
    yaml.dump(document, text)
    content = text.getvalue().encode("utf-8")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        at = draw(st.integers(0, len(content)))
        how = draw(st.sampled_from(["splice", "splice", "cut", "repeat line"]))
        if how == "cut":
            content = content[:at]
        elif how == "repeat line":
            lines = content.splitlines(keepends=True) or [b""]
            index = draw(st.integers(0, len(lines) - 1))
            content = b"".join([*lines[: index + 1], lines[index], *lines[index + 1:]])
        else:
            content = content[:at] + draw(st.sampled_from(SPLICES)) + content[at:]
    return content


# -- running the CLI ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one command did."""

    code: int
    stdout: str
    stderr: str
    seconds: float


@contextmanager
def _clean_environment() -> Iterator[None]:
    """No ``RETENTIOND_*`` variable of the test run (RETENTIOND_FUZZ) reaches the settings."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("RETENTIOND_")}
    try:
        yield
    finally:
        os.environ.update(saved)


def in_process(site: Site, *args: str) -> Outcome:
    """``retentiond --config CONFIG ARGS`` through ``main`` in this process; never raises.

    An exception escaping ``main`` is what the installed command would show: a traceback.
    """
    saved = sys.argv
    code: int | str | None = 0
    started = time.perf_counter()
    with _clean_environment(), CliRunner().isolation() as (out, err, _):
        sys.argv = ["retentiond", "--config", str(site.config), *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        except Exception:  # noqa: BLE001 - what a subprocess would print: exit 1, a traceback
            import traceback  # noqa: PLC0415

            code = 1
            sys.stderr.write(traceback.format_exc())
            sys.stderr.flush()
        finally:
            sys.argv = saved
            structlog.reset_defaults()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    seconds = time.perf_counter() - started
    return Outcome(code if isinstance(code, int) else 1, stdout, stderr, seconds)


def as_subprocess(site: Site, *args: str) -> Outcome:
    """``python -m retentiond --config CONFIG ARGS`` as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTIOND_")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(site.config),
                             *args], capture_output=True, text=True, env=env, timeout=120,
                            check=False, errors="replace")
    return Outcome(result.returncode, result.stdout, result.stderr,
                   time.perf_counter() - started)


def check_validate(outcome: Outcome) -> None:
    """Exit 0 or 2, no traceback, bounded time; on 2, one ``error:`` line per problem."""
    shown = (outcome.stdout + outcome.stderr)[-3000:]
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert outcome.code in {0, 2}, shown
    assert outcome.seconds < BOUND, (outcome.seconds, shown)
    lines = outcome.stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    others = [line for line in lines
              if not line.startswith(("error: ", "warning: ")) and not COUNT.match(line)]
    assert [] == others, shown
    assert all(len(line) <= LONGEST_LINE for line in lines), max(lines, key=len)[:3000]
    assert all(line.isprintable() for line in lines), shown  # no terminal escapes
    if outcome.code == 0:
        assert outcome.stdout.startswith("ok: "), shown
        assert [] == errors, shown
        return
    assert errors, shown
    counts = [int(match.group(1)) for line in lines if (match := COUNT.match(line))]
    assert counts in ([], [len(errors)]), shown


def check_plan(outcome: Outcome) -> None:
    """A policy ``validate`` accepted plans: exit 0, its JSON, no error and no traceback."""
    shown = (outcome.stdout + outcome.stderr)[-3000:]
    assert "Traceback" not in outcome.stdout + outcome.stderr, shown
    assert (0, []) == (outcome.code, [line for line in outcome.stderr.splitlines()
                                      if line.startswith("error: ")]), shown
    assert outcome.seconds < BOUND, (outcome.seconds, shown)
    assert isinstance(json.loads(outcome.stdout), list)


@pytest.mark.timeout(0 if LONG else 300)
@FUZZ
@given(content=policy_files())
def test_validate_and_plan_never_crash_on_generated_policy_files(site, content):
    """Any file: validate exits 0 or 2 with one line per problem; validate-ok means plan runs."""
    note(content.decode("utf-8", "backslashreplace")[:5000])
    site.write(content)

    validated = in_process(site, "validate")

    event(f"validate exit {validated.code}")
    check_validate(validated)
    if validated.code == 0:
        check_plan(in_process(site, "plan", "--as-of", AS_OF, "--json"))


@pytest.mark.timeout(0 if LONG else 300)
@settings(FUZZ, max_examples=SUBPROCESS_EXAMPLES)
@given(content=policy_files())
@pytest.mark.slow
def test_the_installed_command_never_crashes_on_generated_policy_files(site, content):
    """The same, through ``python -m retentiond``: real exit codes, real stderr."""
    note(content.decode("utf-8", "backslashreplace")[:5000])
    site.write(content)

    validated = as_subprocess(site, "validate")

    check_validate(validated)
    if validated.code == 0:
        check_plan(as_subprocess(site, "plan", "--as-of", AS_OF, "--json"))
