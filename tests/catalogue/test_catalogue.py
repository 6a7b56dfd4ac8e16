"""A catalogue of hostile schemas, each driven through the real CLI on every backend it exists on.

Each directory beside this module is one shape (see README.md): a DDL file per backend that
creates the tables and inserts old and young rows, ``policy.yaml`` with its rules, holds and
minimum retentions, and ``expect.yaml`` saying what the product promises about it.  One test
per (shape, backend) loads the DDL into a throwaway database and runs, in process, what an
operator would: ``validate``, ``plan --json`` (which must not change a byte), ``run --once``
(with the clock at AS_OF), then checks the rows left, the rows the ledger says were reached
through foreign keys, ``explain`` on the rows that matter, and ``audit verify``.

``expect.yaml`` keys (all optional but ``remain``):

``validate``
    ``exit`` (default 0); ``warnings``: texts that some ``warning`` line must contain.
``refused``
    validate, plan and run all exit 2 with exactly these stderr lines (``{policy}`` is the
    policy file's path); nothing is changed.
``run``
    ``exit`` (default 0); ``errors``: texts that some ``error:`` line must contain.
``remain``
    Per table, what must be left: a list of primary keys (a scalar per single-column key, a
    list per composite key), or ``{columns: [...], rows: [[...], ...]}``.
``reached``
    Per logical table, the first key column of every row the ledger records as reached
    through a foreign key (sorted, repeats kept: a row audited twice shows twice).
``explain``
    A list of ``{table, key: [...], contains: [...], absent: [...]}``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import traceback
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pymysql
import pytest
import sqlalchemy as sa
import structlog
from click.testing import CliRunner
from ruamel.yaml import YAML
from sqlalchemy.engine import make_url

from retentiond.cli import main
from retentiond.clock import SYSTEM_CLOCK

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The moment every shape's data is written against: plan, run and explain all use it."""
AS_OF_TEXT = "2026-03-15T12:00:00+00:00"
BACKENDS = ("sqlite", "postgresql", "mariadb")
SHAPES = sorted(p.name for p in HERE.iterdir() if (p / "policy.yaml").is_file())


def _cases() -> list[Any]:
    return [pytest.param(shape, kind, id=f"{shape}-{kind}", marks=getattr(pytest.mark, kind))
            for shape in SHAPES for kind in BACKENDS if (HERE / shape / f"{kind}.sql").is_file()]


@dataclass(frozen=True)
class Outcome:
    """What one CLI invocation did."""

    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        """Every line it printed, stdout then stderr."""
        return (self.stdout + self.stderr).splitlines()


def run_cli(config: Path, *args: str) -> Outcome:
    """``retentiond --config CONFIG ARGS`` through ``main`` in this process; never raises.

    An exception that escapes ``main`` is what a subprocess would show: exit 1, a traceback.
    """
    runner = CliRunner()
    saved = sys.argv
    code: int | str | None = 0
    with runner.isolation() as (out, err, _):
        sys.argv = ["retentiond", "--config", str(config), *args]
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        except Exception:  # noqa: BLE001 - what a subprocess would print: exit 1 and a traceback
            code = 1
            sys.stderr.write(traceback.format_exc())
            sys.stderr.flush()
        finally:
            sys.argv = saved
            structlog.reset_defaults()
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Outcome(code if isinstance(code, int) else 1, stdout, stderr)


def load_ddl(url: str, kind: str, script: str) -> None:
    """Run a whole DDL file the way its own client would (triggers and functions included)."""
    parsed = make_url(url)
    if kind == "sqlite":
        with closing(sqlite3.connect(parsed.database or "")) as connection:
            connection.executescript(script)
    elif kind == "postgresql":
        with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                             dbname=parsed.database, autocommit=True) as connection:
            connection.execute(script.encode())  # simple protocol: many statements at once
    else:
        connection = pymysql.connect(host=parsed.host, port=parsed.port or 3306,
                                     user=parsed.username, database=parsed.database,
                                     charset="utf8mb4", autocommit=True,
                                     client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
        with closing(connection), connection.cursor() as cursor:
            cursor.execute(script)
            while cursor.nextset():
                pass


def snapshot(url: str, kind: str) -> object:
    """The database's state: an SQLite file's bytes (and journals), else every table's rows."""
    if kind == "sqlite":
        path = Path(make_url(url).database or "")
        return (hashlib.sha256(path.read_bytes()).hexdigest(),
                sorted(p.name for p in path.parent.glob(path.name + "-*")))
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            names = sorted(sa.inspect(connection).get_table_names())
            quote = connection.dialect.identifier_preparer.quote
            return {name: sorted(repr(tuple(row)) for row in connection.exec_driver_sql(
                f"SELECT * FROM {quote(name)}")) for name in names}
    finally:
        engine.dispose()


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, UUID):
        return str(value)
    return value


def rows_left(url: str, table: str, columns: list[str]) -> list[list[object]]:
    """``columns`` of every row left in ``table``, sorted."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
        with engine.connect() as connection:
            found = connection.execute(sa.select(*(reflected.c[c] for c in columns))).all()
    finally:
        engine.dispose()
    return sorted(([_plain(v) for v in row] for row in found), key=repr)


def primary_key(url: str, table: str) -> list[str]:
    """The primary key columns of ``table``, in key order."""
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return list(sa.inspect(connection).get_pk_constraint(table)["constrained_columns"])
    finally:
        engine.dispose()


def reached_in_ledger(state: Path) -> dict[str, list[object]]:
    """Per table named in the ledger, the first key column of each row reached by a foreign key."""
    found: dict[str, list[object]] = {}
    with closing(sqlite3.connect(state)) as connection:
        bodies = connection.execute("SELECT body FROM audit_log WHERE kind = 'batch.outcome' "
                                    "ORDER BY seq").fetchall()
    for (body,) in bodies:
        outcome = json.loads(body)
        if outcome.get("status") != "applied":
            continue
        for label, keys in (outcome.get("reached") or {}).items():
            table = str(label).partition(" (")[0].rpartition(".")[2]
            found.setdefault(table, []).extend(key[0] for key in keys)
    return {table: sorted(keys, key=repr) for table, keys in found.items()}


@dataclass(frozen=True)
class Site:
    """A shape loaded into a throwaway database, with its config, policy and state database."""

    shape: str
    kind: str
    url: str
    config: Path
    policy: Path
    state: Path
    expect: dict[str, Any]

    def cli(self, *args: str) -> Outcome:
        """Run the CLI on this site."""
        return run_cli(self.config, *args)


@pytest.fixture
def site(shape, server, backend, tmp_path, monkeypatch):
    """The shape's DDL loaded into ``backend``, its policy and a config naming both."""
    folder = HERE / shape
    load_ddl(backend, server.kind, (folder / f"{server.kind}.sql").read_text("utf-8"))
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = policies / "policy.yaml"
    shutil.copyfile(folder / "policy.yaml", policy)
    state = tmp_path / "state.db"
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{state}"\n'
                      f'log_level = "warning"\n\n[stores.app]\nurl = "{backend}"\n',
                      encoding="utf-8")
    # run --once takes no --as-of: enforcement reads the clock here, so the clock is set.
    monkeypatch.setattr(SYSTEM_CLOCK, "now", lambda: AS_OF)
    expect = YAML(typ="safe").load((folder / "expect.yaml").read_text("utf-8"))
    return Site(shape, server.kind, backend, config, policy, state, expect)


def _expected_remain(site: Site, table: str, spec: object) -> tuple[list[str], list[object]]:
    if isinstance(spec, dict):
        return list(spec["columns"]), sorted((list(r) for r in spec["rows"]), key=repr)
    columns = primary_key(site.url, table)
    keys = [k if isinstance(k, list) else [k] for k in spec or []]
    return columns, sorted(keys, key=repr)


def _explain_args(entry: dict[str, Any]) -> list[str]:
    args = ["explain", "--store", "app", "--table", entry["table"], "--as-of", AS_OF_TEXT]
    for part in entry["key"]:
        args += ["--key", str(part)]
    return args


@pytest.mark.parametrize(("shape", "server"), _cases(), indirect=["server"])
def test_a_hostile_schema_keeps_every_promise(site: Site):
    """Validate, a read-only plan and one run leave the promised rows, ledger and explanations."""
    expect, transcript = site.expect, []
    expected: dict[str, object] = {}
    actual: dict[str, object] = {}

    def cli(*args: str) -> Outcome:
        outcome = site.cli(*args)
        shown = _plan_summary(outcome.stdout) if args[0] == "plan" else outcome.stdout
        transcript.append(f"$ retentiond {' '.join(args)}  -> exit {outcome.code}\n"
                          f"{shown}{outcome.stderr}")
        return outcome

    before = snapshot(site.url, site.kind)
    validated = cli("validate")
    planned = cli("plan", "--as-of", AS_OF_TEXT, "--json")
    unchanged = before == snapshot(site.url, site.kind)
    ran = cli("run", "--once")
    refused = expect.get("refused")
    if refused is not None:
        lines = [line.replace("{policy}", str(site.policy)) for line in refused]
        expected["refused"] = [(2, lines)] * 3
        # what is said to the operator; a refused run is also logged (a JSON event line)
        actual["refused"] = [(o.code, [line for line in o.stderr.splitlines()
                                       if not line.startswith("{")])
                             for o in (validated, planned, ran)]
        expected["unchanged"], actual["unchanged"] = True, before == snapshot(site.url, site.kind)
    else:
        wanted = expect.get("validate") or {}
        warnings = [line for line in validated.lines if "warning" in line.lower()]
        expected["validate"] = (wanted.get("exit", 0), [])
        actual["validate"] = (validated.code, [w for w in wanted.get("warnings", [])
                                               if not any(w in line for line in warnings)])
        expected["plan"] = (0, True, "read-only")
        actual["plan"] = (planned.code, planned.code == 0 and _is_plan(planned.stdout),
                          "read-only" if unchanged else "CHANGED THE DATABASE")
        wanted = expect.get("run") or {}
        errors = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
        expected["run"] = (wanted.get("exit", 0), [])
        actual["run"] = (ran.code, [e for e in wanted.get("errors", [])
                                    if not any(e in line for line in errors)])

    expected["remain"], actual["remain"] = {}, {}
    for table, spec in (expect.get("remain") or {}).items():
        columns, expected["remain"][table] = _expected_remain(site, table, spec)
        actual["remain"][table] = rows_left(site.url, table, columns)

    if "reached" in expect:
        expected["reached"] = {t: sorted(keys, key=repr)
                               for t, keys in (expect["reached"] or {}).items() if keys}
        actual["reached"] = reached_in_ledger(site.state)

    expected["explain"], actual["explain"] = [], []
    for entry in expect.get("explain") or []:
        explained = cli(*_explain_args(entry))
        text = explained.stdout
        expected["explain"].append((entry["table"], entry["key"], 0, True, [], []))
        actual["explain"].append((
            entry["table"], entry["key"], explained.code,
            text.startswith(f"app.{entry['table']} key "),
            [t for t in entry.get("contains", []) if t not in text],
            [t for t in entry.get("absent", []) if t in text]))

    verified = cli("audit", "verify")
    expected["verify"] = (0, True)
    actual["verify"] = (verified.code, verified.stdout.startswith("ok"))
    expected["tracebacks"], actual["tracebacks"] = 0, sum("Traceback" in t for t in transcript)

    assert expected == actual, "\n".join(transcript)


def _plan_summary(text: str) -> str:
    """The counts of a JSON plan, one line per rule (the transcript of a failure)."""
    if not _is_plan(text):
        return text
    wanted = ("rule", "matched", "held", "protected", "null_age", "blocked", "eligible",
              "stopped_by", "error")
    return "".join(json.dumps({k: plan.get(k) for k in wanted}) + "\n"
                   for plan in json.loads(text))


def _is_plan(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def test_every_shape_is_described_and_complete():
    """Each shape has a README line, a policy, an expectation and DDL for at least one backend."""
    readme = (HERE / "README.md").read_text("utf-8")
    incomplete = [shape for shape in SHAPES
                  if f"`{shape}`" not in readme or not (HERE / shape / "expect.yaml").is_file()
                  or not any((HERE / shape / f"{k}.sql").is_file() for k in BACKENDS)]
    assert ([], True) == (incomplete, len(SHAPES) >= 12)
