"""Benchmark retentiond's enforcement against hand-written batched SQL loops.

Builds ``emails`` with N email-like rows (exactly half older than the cutoff, ages scattered
over the ids) on SQLite, PostgreSQL and MariaDB, then runs each contender on a fresh copy of
the table, each in its own subprocess (so its peak RSS is its own):

``hand-delete``       raw driver, ``DELETE ... WHERE id IN (SELECT id ... AND id > :last ORDER BY
                      id LIMIT n) RETURNING id``, one transaction per batch (not on MariaDB,
                      which refuses LIMIT in an IN subquery)
``hand-delete-sel``   raw driver, ``SELECT id ... AND id > :last ORDER BY id LIMIT n`` then
                      ``DELETE ... WHERE id = ANY(:ids)`` (``IN (...)`` on SQLite/MariaDB)
``rtd-delete``        retentiond ``enforce()`` of a ``delete`` rule, audit ledger on
``hand-pseudonymize`` raw driver: select (id, sender) walking the key, HMAC-SHA256 in Python
                      (precomputed hmac + .copy()), base32 of 10 digest bytes (16 chars),
                      set-based UPDATE
``hand-pseudonymize-unnest``  PostgreSQL: the same, ``UPDATE ... FROM unnest(:ids, :values)``
``rtd-pseudonymize``  retentiond ``pseudonymize`` (length 16)
``hand-quarantine``   raw driver: select ids walking the key, ``INSERT INTO q SELECT ... WHERE
                      id IN (batch)`` then ``DELETE`` of the batch
``rtd-quarantine``    retentiond ``quarantine``
``orm-delete``        naive SQLAlchemy ORM: query old objects, ``session.delete(obj)`` per row,
                      commit per batch; capped at --orm-rows rows

Each action's baseline is its fastest hand-written loop.  Run ``python bench/bench_enforce.py
--help``; see bench/README.md for what the numbers mean.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import os
import platform
import random
import resource
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
"""The moment every run enforces at; the rule keeps 12 months, so the cutoff is 2025-06-01."""
CUTOFF = datetime(2025, 6, 1)  # noqa: DTZ001 - naive UTC wall time, as the TIMESTAMP column holds
CUTOFF_TEXT = "2025-06-01 00:00:00"
PSEUDONYM_LENGTH = 16
PSEUDONYM_SHAPE = f"^[a-z2-7]{{{PSEUDONYM_LENGTH}}}$"

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}

GROUPS = {
    "delete": ("hand-delete", "hand-delete-sel", "rtd-delete"),
    "pseudonymize": ("hand-pseudonymize", "hand-pseudonymize-unnest", "rtd-pseudonymize"),
    "quarantine": ("hand-quarantine", "rtd-quarantine"),
    "orm": ("orm-delete",),
}
BASELINE_OF = {
    "rtd-delete": "delete", "orm-delete": "delete", "hand-delete": "delete",
    "hand-delete-sel": "delete",
    "rtd-pseudonymize": "pseudonymize", "hand-pseudonymize": "pseudonymize",
    "hand-pseudonymize-unnest": "pseudonymize",
    "rtd-quarantine": "quarantine", "hand-quarantine": "quarantine",
}
TARGETS = {"rtd-delete": 0.85, "rtd-quarantine": 0.8, "rtd-pseudonymize": 0.9}

COLUMNS = "id, sender, subject, body, submitted_at"


# =============================================================================================
# The data: deterministic, email-like, half old, ages scattered over ids
# =============================================================================================

_WORDS = ("invoice", "order", "refund", "delivery", "account", "password", "meeting", "contract",
          "complaint", "request", "update", "shipment", "payment", "question", "support",
          "ticket", "renewal", "offer", "schedule", "report", "return", "warranty", "address",
          "change", "please", "thanks", "regards", "urgent", "follow")


def _texts(rng: random.Random, count: int, words: int) -> list[str]:
    return [" ".join(rng.choice(_WORDS) for _ in range(words)) for _ in range(count)]


def generate(rows: int, seed: int = 7):
    """Yield (id, sender, subject, body, submitted_at text) for ids 1..rows.

    Exactly ``rows // 2`` rows are older than the cutoff, chosen by a seeded shuffle, so age
    does not rise with id (the FIELD-NOTES scatter trap).  Old rows are 1 second to 3 years
    before the cutoff, young ones 1 second to 364 days after it; none sits on the cutoff.
    """
    rng = random.Random(seed)
    flags = bytearray([1]) * (rows // 2) + bytearray(rows - rows // 2)
    rng.shuffle(flags)  # type: ignore[arg-type]
    subjects = _texts(rng, 997, 6)
    bodies = _texts(rng, 1009, 30)
    base = int(CUTOFF.replace(tzinfo=UTC).timestamp())
    three_years, one_year = 3 * 365 * 86400, 364 * 86400
    fmt = datetime.fromtimestamp
    for i in range(1, rows + 1):
        seconds = base - rng.randint(1, three_years) if flags[i - 1] else \
            base + rng.randint(1, one_year)
        when = fmt(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
        sender = f"user{(i * 7919) % 100_000_007}.{_WORDS[i % len(_WORDS)]}@example{i % 97}.com"
        yield i, sender, subjects[i % 997], bodies[(i * 31) % 1009], when


# =============================================================================================
# Backends (parent side): build a template once, give each contender a fresh copy, verify
# =============================================================================================

DDL = {
    "sqlite": ("CREATE TABLE emails (id INTEGER PRIMARY KEY, sender VARCHAR(255) NOT NULL, "
               "subject VARCHAR(200), body TEXT, submitted_at TIMESTAMP NOT NULL)"),
    "postgresql": ("CREATE TABLE emails (id BIGINT NOT NULL, sender VARCHAR(255) NOT NULL, "
                   "subject VARCHAR(200), body TEXT, submitted_at TIMESTAMP NOT NULL)"),
    "mariadb": ("CREATE TABLE emails (id BIGINT NOT NULL PRIMARY KEY, "
                "sender VARCHAR(255) NOT NULL, subject VARCHAR(200), body TEXT, "
                "submitted_at DATETIME NOT NULL) ENGINE=InnoDB"),
}


@dataclass
class Target:
    """Where one contender runs: a fresh copy of the table."""

    kind: str
    url: str
    """SQLAlchemy URL (retentiond, the ORM)."""
    dsn: Any
    """What the raw driver connects with."""


class SqliteBackend:
    kind = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template = workdir / "template.db"
        self.work = workdir / "work.db"

    def build(self, rows: int, *, age_index: bool) -> None:
        conn = sqlite3.connect(self.template, isolation_level=None)
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute(DDL["sqlite"])
        data = generate(rows)
        while True:
            chunk = [row for _, row in zip(range(100_000), data, strict=False)]
            if not chunk:
                break
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO emails VALUES (?, ?, ?, ?, ?)", chunk)
            conn.execute("COMMIT")
        if age_index:
            conn.execute("CREATE INDEX emails_submitted_at ON emails (submitted_at)")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.close()

    def fresh(self) -> Target:
        self.drop_work()
        shutil.copyfile(self.template, self.work)
        # Read the copy once so every contender starts with it in the page cache, and flush
        # it: otherwise the contender's first COMMIT (its fsync) pays for writing the copy
        # back, which is the SQLite twin of the CHECKPOINT the PostgreSQL copy gets.
        with self.work.open("rb+") as handle:
            while handle.read(1 << 24):
                pass
            os.fsync(handle.fileno())
        return Target("sqlite", f"sqlite:///{self.work}", str(self.work))

    def drop_work(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.work}{suffix}").unlink(missing_ok=True)

    def query(self, target: Target, sql: str) -> Any:
        conn = sqlite3.connect(target.dsn)
        conn.create_function("regexp", 2, _regexp, deterministic=True)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()

    def size(self, target: Target) -> int:
        return Path(target.dsn).stat().st_size

    def close(self) -> None:
        self.drop_work()
        self.template.unlink(missing_ok=True)


def _regexp(pattern: str, value: str | None) -> bool:
    import re  # noqa: PLC0415

    return value is not None and re.search(pattern, value) is not None


class PostgresBackend:
    kind = "postgresql"

    def __init__(self, workdir: Path) -> None:
        import psycopg  # noqa: PLC0415

        self.psycopg = psycopg
        self.tag = secrets.token_hex(4)
        self.template = f"rtdbench_tpl_{self.tag}"
        self.work = f"rtdbench_work_{self.tag}"
        self.workdir = workdir

    def admin(self, sql: str) -> None:
        with self.psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql)

    def dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port=5432 user=postgres dbname={database}"

    def build(self, rows: int, *, age_index: bool) -> None:
        self.admin(f"CREATE DATABASE {self.template}")
        with self.psycopg.connect(self.dsn(self.template), autocommit=True) as conn:
            conn.execute(DDL["postgresql"])
            with conn.cursor() as cur, cur.copy("COPY emails FROM STDIN") as copy:
                lines: list[str] = []
                for row in generate(rows):
                    lines.append("\t".join(map(str, row)))
                    if len(lines) == 50_000:
                        copy.write("\n".join(lines) + "\n")
                        lines.clear()
                if lines:
                    copy.write("\n".join(lines) + "\n")
            conn.execute("ALTER TABLE emails ADD PRIMARY KEY (id)")
            if age_index:
                conn.execute("CREATE INDEX emails_submitted_at ON emails (submitted_at)")
            conn.execute("VACUUM (FREEZE, ANALYZE) emails")

    def fresh(self) -> Target:
        self.drop_work()
        self.admin(f"CREATE DATABASE {self.work} TEMPLATE {self.template} STRATEGY FILE_COPY")
        with self.psycopg.connect(self.dsn(self.work), autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM emails").fetchone()  # warm the cache
            conn.execute("CHECKPOINT")
        return Target("postgresql", f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.work}",
                      self.dsn(self.work))

    def drop_work(self) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {self.work} WITH (FORCE)")

    def query(self, target: Target, sql: str) -> Any:
        with self.psycopg.connect(target.dsn) as conn:
            return conn.execute(sql.replace("REGEXP", "~")).fetchone()[0]  # type: ignore[index]

    def size(self, target: Target) -> int:
        return int(self.query(target, "SELECT pg_total_relation_size('emails')"))

    def close(self) -> None:
        self.drop_work()
        self.admin(f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")


class MariadbBackend:
    kind = "mariadb"

    def __init__(self, workdir: Path) -> None:
        import pymysql  # noqa: PLC0415

        self.pymysql = pymysql
        self.tag = secrets.token_hex(4)
        self.template = f"rtdbench_tpl_{self.tag}"
        self.work = f"rtdbench_work_{self.tag}"
        self.workdir = workdir

    def connect(self, database: str | None = None) -> Any:
        return self.pymysql.connect(**MARIADB, database=database, autocommit=True)

    def build(self, rows: int, *, age_index: bool) -> None:
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.template}")
            cur.execute(f"USE {self.template}")
            cur.execute(DDL["mariadb"])
            if age_index:
                cur.execute("CREATE INDEX emails_submitted_at ON emails (submitted_at)")
            cur.execute("SET autocommit = 0")
            data = generate(rows)
            while True:
                chunk = [row for _, row in zip(range(5_000), data, strict=False)]
                if not chunk:
                    break
                cur.executemany("INSERT INTO emails VALUES (%s, %s, %s, %s, %s)", chunk)
                if chunk[-1][0] % 100_000 == 0:
                    conn.commit()
            conn.commit()
            cur.execute("ANALYZE TABLE emails")
            cur.fetchall()
        conn.close()

    def fresh(self) -> Target:
        self.drop_work()
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.work}")
            cur.execute(f"CREATE TABLE {self.work}.emails LIKE {self.template}.emails")
            cur.execute(f"INSERT INTO {self.work}.emails SELECT * FROM {self.template}.emails")
            cur.execute(f"ANALYZE TABLE {self.work}.emails")
            cur.fetchall()
        conn.close()
        return Target("mariadb", f"mysql+pymysql://root@127.0.0.1:3306/{self.work}",
                      {**MARIADB, "database": self.work})

    def drop_work(self) -> None:
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.work}")
        conn.close()

    def query(self, target: Target, sql: str) -> Any:
        conn = self.connect(self.work)
        del target
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("sender REGEXP", "BINARY sender REGEXP"))
                return cur.fetchone()[0]
        finally:
            conn.close()

    def size(self, target: Target) -> int:
        del target
        return int(self.query(Target("", "", ""), (
            "SELECT data_length + index_length FROM information_schema.tables "
            f"WHERE table_schema = '{self.work}' AND table_name = 'emails'")))

    def close(self) -> None:
        self.drop_work()
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.template}")
        conn.close()


BACKENDS = {"sqlite": SqliteBackend, "postgresql": PostgresBackend, "mariadb": MariadbBackend}


def verify(backend: Any, target: Target, contender: str, *, rows: int, acted: int,
           orm_rows: int) -> str | None:
    """None when the table is exactly what the contender had to leave; else what is wrong."""
    old, young = rows // 2, rows - rows // 2
    cutoff = f"'{CUTOFF_TEXT}'"
    count = backend.query(target, "SELECT count(*) FROM emails")
    if contender == "orm-delete":
        expected = min(orm_rows, old)
        if acted != expected or count != rows - expected:
            return f"orm: acted {acted}, {count} rows left; expected {rows - expected}"
        return None
    if "pseudonymize" in contender:
        shaped = f"sender REGEXP '{PSEUDONYM_SHAPE}'"
        left = backend.query(target, f"SELECT count(*) FROM emails WHERE submitted_at < "
                                     f"{cutoff} AND NOT ({shaped})")
        touched = backend.query(target, f"SELECT count(*) FROM emails WHERE submitted_at > "
                                        f"{cutoff} AND {shaped}")
        if acted != old or count != rows or left or touched:
            return (f"pseudonymize: acted {acted} of {old}; {count} rows; {left} old senders "
                    f"not pseudonymized; {touched} young senders changed")
        return None
    left_old = backend.query(target, f"SELECT count(*) FROM emails WHERE submitted_at < {cutoff}")
    if acted != old or count != young or left_old:
        return f"{contender}: acted {acted} of {old}; {count} rows left ({left_old} old)"
    if contender.endswith("quarantine"):
        table = "retentiond_q_emails" if contender.startswith("rtd") else "q_emails"
        moved = backend.query(target, f"SELECT count(*) FROM {table}")
        if moved != old:
            return f"{contender}: {moved} rows in {table}, expected {old}"
    return None


# =============================================================================================
# Contenders (child side): each runs in its own process and writes a JSON result
# =============================================================================================

def _rss_kb(field: str = "VmRSS") -> int:
    """This process's resident set (VmRSS) or its peak so far (VmHWM), in KiB.

    VmHWM starts afresh at exec, so unlike ``ru_maxrss`` (which Linux carries over from the
    parent's memory at fork/exec) it is the contender's own peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _start(spec: dict[str, Any]) -> None:
    """The clock starts: note the time and the resident set size at this moment."""
    spec["rss_t0_kb"] = _rss_kb()
    spec["t0"] = time.perf_counter()


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs resets the peak to the current RSS)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


DIGEST_BYTES = (PSEUDONYM_LENGTH + 7) // 8 * 5


class Pseudonymizer:
    """HMAC-SHA256 with a precomputed key schedule; lowercase base32, 16 characters."""

    def __init__(self, key: bytes) -> None:
        self.mac = hmac.new(key, digestmod=hashlib.sha256)

    def __call__(self, value: str) -> str:
        mac = self.mac.copy()
        mac.update(value.encode())
        # Only the bytes the cut keeps are encoded (5 bytes make 8 base32 characters).
        return base64.b32encode(mac.digest()[:DIGEST_BYTES]).decode().lower()[:PSEUDONYM_LENGTH]


# -- the hand-written loops -------------------------------------------------------------------
#
# Each loop walks the primary key (``id > :last``), one transaction per batch, no audit.  A
# step acts on one batch and returns the ids it acted on (empty when nothing is left).

SELECT_IDS = ("SELECT id{extra} FROM emails WHERE submitted_at < {mark} AND id > {mark} "
              "ORDER BY id LIMIT {mark}")


class PgSteps:
    """PostgreSQL through psycopg 3."""

    def __init__(self, spec: dict[str, Any], action: str) -> None:
        import psycopg  # noqa: PLC0415

        self.conn = psycopg.connect(spec["dsn"])
        self.batch = spec["batch"]
        self.pseud = Pseudonymizer(b"k" * 32)
        self.values_sql: dict[int, str] = {}
        if action == "quarantine":
            self.conn.execute("CREATE TABLE q_emails AS SELECT *, ''::varchar(36) AS batch_id "
                              "FROM emails WITH NO DATA")
            self.conn.commit()

    def select(self, extra: str = "") -> list[Any]:
        return self.conn.execute(SELECT_IDS.format(extra=extra, mark="%s"),
                                 (CUTOFF, self.last, self.batch)).fetchall()

    def delete(self) -> list[int]:
        ids = [r[0] for r in self.conn.execute(
            "DELETE FROM emails WHERE id IN (SELECT id FROM emails WHERE submitted_at < %s "
            "AND id > %s ORDER BY id LIMIT %s) RETURNING id", (CUTOFF, self.last, self.batch))]
        return sorted(ids)

    def delete_sel(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            self.conn.execute("DELETE FROM emails WHERE id = ANY(%s)", (ids,))
        return ids

    def pseudonymize(self) -> list[int]:
        rows = self.select(", sender")
        if rows:
            n = len(rows)
            sql = self.values_sql.get(n)
            if sql is None:
                sql = self.values_sql[n] = (
                    "UPDATE emails AS e SET sender = v.s FROM (VALUES (%s::bigint, %s::varchar)"
                    + ", (%s, %s)" * (n - 1) + ") AS v(id, s) WHERE e.id = v.id")
            params: list[Any] = []
            for key, sender in rows:
                params += (key, self.pseud(sender))
            self.conn.execute(sql, params)
        return [r[0] for r in rows]

    def pseudonymize_unnest(self) -> list[int]:
        rows = self.select(", sender")
        if rows:
            self.conn.execute(
                "UPDATE emails AS e SET sender = v.s FROM unnest(%s::bigint[], %s::varchar[]) "
                "AS v(id, s) WHERE e.id = v.id",
                ([r[0] for r in rows], [self.pseud(r[1]) for r in rows]))
        return [r[0] for r in rows]

    def quarantine(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            self.conn.execute(f"INSERT INTO q_emails SELECT {COLUMNS}, %s FROM emails "
                              "WHERE id = ANY(%s)", (secrets.token_hex(16), ids))
            self.conn.execute("DELETE FROM emails WHERE id = ANY(%s)", (ids,))
        return ids

    def begin(self) -> None:
        """psycopg begins a transaction by itself."""

    def commit(self) -> None:
        self.conn.commit()


class SqliteSteps:
    """SQLite through the standard library's sqlite3, explicit transactions."""

    def __init__(self, spec: dict[str, Any], action: str) -> None:
        self.conn = sqlite3.connect(spec["dsn"], isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys=ON")  # what retentiond's connections run, too
        self.batch = spec["batch"]
        self.pseud = Pseudonymizer(b"k" * 32)
        if action == "quarantine":
            self.conn.execute("CREATE TABLE q_emails AS SELECT *, '' AS batch_id FROM emails "
                              "WHERE 0")

    def select(self, extra: str = "") -> list[Any]:
        return self.conn.execute(SELECT_IDS.format(extra=extra, mark="?"),
                                 (CUTOFF_TEXT, self.last, self.batch)).fetchall()

    def delete(self) -> list[int]:
        return sorted(r[0] for r in self.conn.execute(
            "DELETE FROM emails WHERE id IN (SELECT id FROM emails WHERE submitted_at < ? "
            "AND id > ? ORDER BY id LIMIT ?) RETURNING id", (CUTOFF_TEXT, self.last, self.batch)))

    def delete_sel(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"DELETE FROM emails WHERE id IN ({marks})", ids)
        return ids

    def pseudonymize(self) -> list[int]:
        rows = self.select(", sender")
        if rows:
            self.conn.executemany("UPDATE emails SET sender = ? WHERE id = ?",
                                  [(self.pseud(sender), key) for key, sender in rows])
        return [r[0] for r in rows]

    def quarantine(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            marks = ",".join("?" * len(ids))
            self.conn.execute(f"INSERT INTO q_emails SELECT {COLUMNS}, ? FROM emails "
                              f"WHERE id IN ({marks})", [secrets.token_hex(16), *ids])
            self.conn.execute(f"DELETE FROM emails WHERE id IN ({marks})", ids)
        return ids

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # as retentiond's writer

    def commit(self) -> None:
        self.conn.execute("COMMIT")


class MariadbSteps:
    """MariaDB through PyMySQL, READ COMMITTED like retentiond's writer."""

    def __init__(self, spec: dict[str, Any], action: str) -> None:
        import pymysql  # noqa: PLC0415

        self.conn = pymysql.connect(**spec["dsn"], autocommit=False)
        self.cur = self.conn.cursor()
        self.batch = spec["batch"]
        self.pseud = Pseudonymizer(b"k" * 32)
        self.cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        if action == "quarantine":
            self.cur.execute("CREATE TABLE q_emails AS SELECT *, CAST('' AS CHAR(36)) AS "
                             "batch_id FROM emails WHERE 0")
        if action == "pseudonymize":
            # PyMySQL runs executemany of an UPDATE row by row; a joined UPDATE is set-based.
            self.cur.execute("CREATE TEMPORARY TABLE new_senders (id BIGINT PRIMARY KEY, "
                             "s VARCHAR(255))")
        self.conn.commit()

    def select(self, extra: str = "") -> list[Any]:
        self.cur.execute(SELECT_IDS.format(extra=extra, mark="%s"),
                         (CUTOFF_TEXT, self.last, self.batch))
        return list(self.cur.fetchall())

    def delete_sel(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            self.cur.execute(f"DELETE FROM emails WHERE id IN ({','.join(map(str, ids))})")
        return ids

    def pseudonymize(self) -> list[int]:
        rows = self.select(", sender")
        if rows:
            self.cur.execute("DELETE FROM new_senders")
            self.cur.executemany("INSERT INTO new_senders VALUES (%s, %s)",
                                 [(key, self.pseud(sender)) for key, sender in rows])
            self.cur.execute("UPDATE emails e JOIN new_senders n ON e.id = n.id "
                             "SET e.sender = n.s")
        return [r[0] for r in rows]

    def quarantine(self) -> list[int]:
        ids = [r[0] for r in self.select()]
        if ids:
            listed = ",".join(map(str, ids))
            self.cur.execute(f"INSERT INTO q_emails SELECT {COLUMNS}, %s FROM emails "
                             f"WHERE id IN ({listed})", (secrets.token_hex(16),))
            self.cur.execute(f"DELETE FROM emails WHERE id IN ({listed})")
        return ids

    def begin(self) -> None:
        """PyMySQL with autocommit off begins a transaction by itself."""

    def commit(self) -> None:
        self.conn.commit()


STEPS = {"sqlite": SqliteSteps, "postgresql": PgSteps, "mariadb": MariadbSteps}


def hand_loop(spec: dict[str, Any], action: str) -> int:
    """Run one hand-written loop to the end; the rows it acted on."""
    steps = STEPS[spec["kind"]](spec, action)
    step = getattr(steps, action.replace("-", "_"))
    steps.last = 0  # type: ignore[attr-defined]
    done = 0
    _start(spec)
    while True:
        steps.begin()
        ids = step()
        steps.commit()
        if not ids:
            return done
        done += len(ids)
        steps.last = ids[-1]  # type: ignore[attr-defined]


# -- naive SQLAlchemy ORM --------------------------------------------------------------------

def orm_delete(spec: dict[str, Any]) -> int:
    import sqlalchemy as sa  # noqa: PLC0415
    from sqlalchemy.orm import DeclarativeBase, Session  # noqa: PLC0415

    sqlite = spec["kind"] == "sqlite"

    class Base(DeclarativeBase):
        pass

    class Email(Base):
        __tablename__ = "emails"
        id = sa.Column(sa.BigInteger, primary_key=True)
        sender = sa.Column(sa.String(255), nullable=False)
        subject = sa.Column(sa.String(200))
        body = sa.Column(sa.Text)
        # SQLite holds the timestamps as text: compare them as text, as the application would.
        submitted_at = sa.Column(sa.String if sqlite else sa.DateTime, nullable=False)

    engine = sa.create_engine(spec["url"])
    cap, batch = spec["orm_rows"], spec["batch"]
    cutoff: Any = CUTOFF_TEXT if sqlite else CUTOFF
    done = 0
    with Session(engine) as session:
        session.execute(sa.select(1))
        _start(spec)
        while done < cap:
            objects = session.scalars(sa.select(Email).where(Email.submitted_at < cutoff)
                                      .limit(min(batch, cap - done))).all()
            if not objects:
                break
            for obj in objects:
                session.delete(obj)
            session.commit()
            done += len(objects)
    engine.dispose()
    return done


# -- retentiond ------------------------------------------------------------------------------

POLICY = """\
rules:
  - id: bench-{action}
    description: Benchmark rule ({action}).
    store: bench
    table: emails
    age:
      column: submitted_at
      older_than: 12 months
    action: {action_yaml}
    limits:
      max_rows: 10000000
      max_percent: 100
    batch_size: {batch}
"""
ACTION_YAML = {
    "delete": "{type: delete}",
    "pseudonymize": ("{type: pseudonymize, columns: {sender: {domain: customer-email, "
                     f"length: {PSEUDONYM_LENGTH}}}}}}}"),
    "quarantine": "{type: quarantine, release_after: 12 months}",
}


def rtd_run(spec: dict[str, Any], action: str) -> int:
    from retentiond.keyring import Keyring  # noqa: PLC0415
    from retentiond.ledger.chain import AuditLedger  # noqa: PLC0415
    from retentiond.ledger.state import StateDB  # noqa: PLC0415
    from retentiond.logs import configure_logging  # noqa: PLC0415
    from retentiond.policy.loader import load_policies  # noqa: PLC0415
    from retentiond.run.enforce import Options, enforce  # noqa: PLC0415
    from retentiond.run.engine import Engine  # noqa: PLC0415
    from retentiond.settings import (  # noqa: PLC0415
        Defaults,
        LogFormat,
        PseudonymSettings,
        SecretSource,
        Settings,
    )
    from retentiond.stores import open_store  # noqa: PLC0415
    from retentiond.stores.registry import Stores  # noqa: PLC0415
    from retentiond.stores.sql import SqlStoreSettings  # noqa: PLC0415

    configure_logging(LogFormat.JSON, "warning")
    if spec.get("whatif"):
        import whatif  # noqa: PLC0415 - bench/whatif.py, beside this script

        whatif.apply(spec["whatif"], spec["kind"])
    work = Path(spec["workdir"])
    policies = work / f"policies-{action}"
    policies.mkdir(exist_ok=True)
    (policies / "bench.yaml").write_text(POLICY.format(
        action=action, action_yaml=ACTION_YAML[action], batch=spec["batch"]))
    key_file = work / "pseudonym.key"
    key_file.write_bytes(base64.b64encode(b"k" * 32))
    settings = Settings(
        policy_dir=policies, state_url=spec["state_url"],
        stores={"bench": SqlStoreSettings(url=spec["url"])},
        defaults=Defaults(batch_size=spec["batch"]),
        pseudonymize=PseudonymSettings(key_id="bench-1",
                                       keys={"bench-1": SecretSource(file=key_file)}),
    )
    policy_set = load_policies(settings.policy_dir)
    stores = Stores(settings.stores, open_store)
    engine = Engine(policy_set, stores, settings.defaults)
    ledger = AuditLedger(StateDB(settings.state_url))
    options = Options(keyring=Keyring.from_settings(settings.pseudonymize))
    rule = policy_set.rule(f"bench-{action}")
    stores.get("bench").ping()  # connect before the clock starts, as the raw loops do
    profiler = None
    if spec.get("profile"):
        import cProfile  # noqa: PLC0415

        profiler = cProfile.Profile()
        profiler.enable()
    _start(spec)
    report = enforce(engine, ledger, rule, as_of=AS_OF, options=options)
    spec["t1"] = time.perf_counter()
    spec["rss_peak_run_kb"] = _rss_kb("VmHWM")  # before the ledger is read back below
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(spec["profile"])
    if report.status != "done":
        raise RuntimeError(f"retentiond run ended {report.status}: {report.error}")
    import retentiond  # noqa: PLC0415

    _reset_peak()
    spec["extra"] = {"batches": report.batches, "ledger_records": ledger.count(),
                     "ledger_ok": ledger.verify().ok,
                     "rss_peak_verify_mb": round(_rss_kb("VmHWM") / 1024, 1),
                     "retentiond": str(Path(retentiond.__file__).parent)}
    stores.close()
    return report.acted


def child(spec: dict[str, Any]) -> None:
    contender = spec["contender"]
    if contender.startswith("rtd-"):
        acted = rtd_run(spec, contender.removeprefix("rtd-"))
    elif contender == "orm-delete":
        acted = orm_delete(spec)
    else:
        acted = hand_loop(spec, contender.removeprefix("hand-"))
    end = spec.get("t1") or time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {"rows": acted, "seconds": end - spec["t0"], "rss_start_kb": spec["rss_t0_kb"],
              "rss_peak_kb": spec.get("rss_peak_run_kb") or _rss_kb("VmHWM"),
              "client_cpu_s": usage.ru_utime + usage.ru_stime, **spec.get("extra", {})}
    Path(spec["result"]).write_text(json.dumps(result))


# =============================================================================================
# Driver
# =============================================================================================

@dataclass(frozen=True)
class Contender:
    """One entry of the comparison: what runs, with which ledger, with which what-if patches."""

    name: str
    state: str = ""
    """retentiond's state database (``sqlite`` or ``postgresql``); empty for the others."""
    whatif: str = ""
    """Comma-separated bench/whatif.py patches (retentiond only)."""

    @property
    def label(self) -> str:
        parts = [self.name]
        if self.state:
            parts.append(f"({self.state} state)")
        if self.whatif:
            parts.append(f"[{self.whatif}]")
        return " ".join(parts)


@dataclass
class Measurement:
    backend: str
    contender: str
    rows: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    start_rss_mb: float
    client_cpu_s: float
    verified: bool
    state: str = ""
    whatif: str = ""
    runs: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return Contender(self.contender, self.state, self.whatif).label


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one contender in a fresh interpreter and return what it measured."""
    process = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)])
    if process.wait() != 0:
        raise RuntimeError(f"{spec['contender']} on {spec['kind']} exited {process.returncode}")
    return json.loads(Path(spec["result"]).read_text())


def contenders_for(kind: str, args: argparse.Namespace) -> list[Contender]:
    chosen: list[Contender] = []
    for group in args.only:
        for name in GROUPS[group]:
            if kind == "mariadb" and name == "hand-delete":
                continue  # MariaDB: "This version ... doesn't yet support 'LIMIT & IN subquery'"
            if kind != "postgresql" and name == "hand-pseudonymize-unnest":
                continue  # unnest() of arrays is PostgreSQL's
            if name.startswith("rtd-"):
                chosen.extend(Contender(name, state, whatif)
                              for state in args.state for whatif in args.whatif)
            else:
                chosen.append(Contender(name))
    return chosen


def bench_backend(kind: str, args: argparse.Namespace, workdir: Path) -> list[Measurement]:
    """Build the table once, then run every contender ``--repeat`` times, interleaved.

    Rounds interleave the contenders (A B C, A B C, ...) so that load from anything else on
    the machine falls on all of them alike; each contender reports its median run.
    """
    backend = BACKENDS[kind](workdir)
    started = time.perf_counter()
    print(f"[{kind}] building {args.rows:,} rows "
          f"({'with' if args.age_index else 'without'} an index on submitted_at) ...",
          flush=True)
    backend.build(args.rows, age_index=args.age_index)
    print(f"[{kind}] built in {time.perf_counter() - started:.1f}s", flush=True)
    chosen = contenders_for(kind, args)
    runs: dict[Contender, list[dict[str, Any]]] = {c: [] for c in chosen}
    try:
        for attempt in range(args.repeat):
            for contender in chosen:
                result = run_one(backend, contender, args=args, workdir=workdir,
                                 profile=args.profile and attempt == 0)
                runs[contender].append(result)
                print(f"[{kind}] round {attempt + 1} {contender.label:44} {result['rows']:>9,} "
                      f"rows {result['seconds']:7.2f}s "
                      f"{result['rows'] / result['seconds']:>10,.0f} rows/s  peak RSS "
                      f"{result['rss_peak_kb'] / 1024:6.1f} MB  load {result['load']:.1f}  "
                      "verified", flush=True)
    finally:
        backend.close()
    measurements = []
    for contender, done in runs.items():
        ordered = sorted(done, key=lambda r: r["seconds"])
        median = ordered[len(ordered) // 2]
        extra = {k: v for k, v in median.items() if k not in {
            "rows", "seconds", "rss_start_kb", "rss_peak_kb", "client_cpu_s", "load"}}
        measurements.append(Measurement(
            backend=kind, contender=contender.name, rows=median["rows"],
            seconds=round(median["seconds"], 3),
            rows_per_s=round(median["rows"] / median["seconds"]),
            peak_rss_mb=round(max(r["rss_peak_kb"] for r in done) / 1024, 1),
            start_rss_mb=round(median["rss_start_kb"] / 1024, 1),
            client_cpu_s=round(median["client_cpu_s"], 2), verified=True,
            state=contender.state, whatif=contender.whatif,
            runs=[round(r["seconds"], 3) for r in done],
            extra=extra | {"load": [round(r["load"], 2) for r in done]}))
    return measurements


def run_one(backend: Any, contender: Contender, *, args: argparse.Namespace,
            workdir: Path, profile: bool) -> dict[str, Any]:
    """One contender on a fresh copy of the table, verified afterwards."""
    target = backend.fresh()
    state_url = ""
    if contender.name.startswith("rtd-"):
        if contender.state == "postgresql":
            state_url = _pg_state(workdir)
        else:
            state_url = f"sqlite:///{workdir / f'state-{secrets.token_hex(4)}.db'}"
    profile_path = None
    if profile and contender.name.startswith("rtd-"):
        RESULTS.mkdir(parents=True, exist_ok=True)
        variant = "-".join(filter(None, [contender.state, contender.whatif.replace(",", "+")]))
        profile_path = str(RESULTS / f"{backend.kind}-{contender.name}-{variant}-"
                                     f"{args.rows}.prof")
    spec = {"contender": contender.name, "kind": backend.kind, "url": target.url,
            "dsn": target.dsn, "batch": args.batch, "orm_rows": args.orm_rows,
            "state_url": state_url, "workdir": str(workdir), "profile": profile_path,
            "whatif": [w for w in contender.whatif.split(",") if w],
            "result": str(workdir / "result.json")}
    load = os.getloadavg()[0]
    try:
        result = run_child(spec)
    finally:
        _drop_pg_state()
    problem = verify(backend, target, contender.name, rows=args.rows, acted=result["rows"],
                     orm_rows=args.orm_rows)
    if problem:
        raise RuntimeError(f"[{backend.kind}] verification failed: {problem}")
    if result.get("ledger_ok") is False:
        raise RuntimeError(f"[{backend.kind}] {contender.label}: the audit ledger does not verify")
    return result | {"load": max(load, os.getloadavg()[0])}


_PG_STATE: list[str] = []


def _pg_state(workdir: Path) -> str:
    """A throwaway PostgreSQL database for retentiond's state (ledger); dropped after the run."""
    backend = PostgresBackend(workdir)
    name = f"rtdbench_state_{secrets.token_hex(4)}"
    backend.admin(f"CREATE DATABASE {name}")
    _PG_STATE.append(name)
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _drop_pg_state() -> None:
    if not _PG_STATE:
        return
    import psycopg  # noqa: PLC0415

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        while _PG_STATE:
            conn.execute(f"DROP DATABASE IF EXISTS {_PG_STATE.pop()} WITH (FORCE)")


def _key(m: Measurement) -> tuple[str, str]:
    return m.backend, m.label


def ratios(measurements: list[Measurement]) -> dict[tuple[str, str], tuple[float, str]]:
    """Each contender's rows/s over the best hand-written loop of its action, same backend."""
    best: dict[tuple[str, str], Measurement] = {}
    for m in measurements:
        if m.contender.startswith("hand-"):
            key = (m.backend, BASELINE_OF[m.contender])
            if key not in best or m.rows_per_s > best[key].rows_per_s:
                best[key] = m
    out = {}
    for m in measurements:
        base = best.get((m.backend, BASELINE_OF[m.contender]))
        if base is not None:
            out[_key(m)] = (m.rows_per_s / base.rows_per_s, base.contender)
    return out


def report(measurements: list[Measurement], args: argparse.Namespace) -> dict[str, Any]:
    rated = ratios(measurements)
    lines = []
    width = max([36, *(len(m.label) for m in measurements)])
    for kind in dict.fromkeys(m.backend for m in measurements):
        lines.append("")
        lines.append(f"{kind}: {args.rows:,} rows ({args.rows // 2:,} old), batch "
                     f"{args.batch:,}, index on submitted_at: "
                     f"{'yes' if args.age_index else 'no'}, repeat {args.repeat} (median)")
        header = (f"{'contender':{width}} {'rows':>9} {'seconds':>8} {'rows/s':>10} "
                  f"{'ratio':>6} {'target':>9} {'peak RSS MB':>11} {'RSS at start':>12} "
                  f"{'cpu s':>6}")
        lines += [header, "-" * len(header)]
        for m in (m for m in measurements if m.backend == kind):
            ratio, _ = rated.get(_key(m), (float("nan"), ""))
            target = TARGETS.get(m.contender)
            verdict = "" if target is None else (
                f"{'ok' if ratio >= target else 'MISS'} {target:.2f}")
            lines.append(f"{m.label:{width}} {m.rows:>9,} {m.seconds:>8.2f} "
                         f"{m.rows_per_s:>10,} {ratio:>6.2f} {verdict:>9} "
                         f"{m.peak_rss_mb:>11.1f} {m.start_rss_mb:>12.1f} "
                         f"{m.client_cpu_s:>6.1f}")
    text = "\n".join(lines)
    print(text)
    return {
        "command": " ".join(sys.argv),
        "package": _provenance(measurements),
        "when": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "sqlite": sqlite3.sqlite_version},
        "rows": args.rows, "batch": args.batch, "age_index": args.age_index,
        "repeat": args.repeat,
        "results": [asdict(m) | {"label": m.label,
                                 "ratio": round(rated.get(_key(m), (float("nan"), ""))[0], 3),
                                 "baseline": rated.get(_key(m), (0, ""))[1],
                                 "target": TARGETS.get(m.contender)}
                    for m in measurements],
        "table": text,
    }


def _provenance(measurements: list[Measurement]) -> dict[str, Any]:
    """Which retentiond was measured: its directory, and the commit when it is this checkout.

    To measure a fixed commit while the checkout moves, extract it and put it first on the
    path: ``git archive HEAD retentiond | tar -x -C /tmp/rtd-$(git rev-parse --short HEAD)``
    then ``PYTHONPATH=/tmp/rtd-<commit> python bench/bench_enforce.py ...``.
    """
    paths = sorted({str(m.extra.get("retentiond")) for m in measurements
                    if m.extra.get("retentiond")})
    out: dict[str, Any] = {"paths": paths}
    repo = HERE.parent
    if paths and paths != [str(repo / "retentiond")]:
        out["note"] = "retentiond imported from outside this checkout (PYTHONPATH)"
        return out
    try:
        out["head"] = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                                     capture_output=True, text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "retentiond"],
                                capture_output=True, text=True, check=True).stdout
        out["working_tree_dirty"] = bool(status.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return out


def compare(paths: list[str]) -> None:
    """Print rows/s and peak RSS of the same contenders across result files (scaling check)."""
    loaded = [json.loads(Path(p).read_text()) for p in paths]
    heads = " ".join(f"{d['rows']:>14,} rows {'RSS MB':>7}" for d in loaded)
    print(f"{'backend':11} {'contender':44} {heads}   rows/s last/first")
    for r in loaded[0]["results"]:
        row = [next((x for x in d["results"] if (x["backend"], x["label"]) ==
                     (r["backend"], r["label"])), None) for d in loaded]
        cells = " ".join(f"{x['rows_per_s']:>14,} rows/s {x['peak_rss_mb']:>7.1f}" if x else
                         f"{'-':>21} {'-':>7}" for x in row)
        last = row[-1]
        ratio = f"{last['rows_per_s'] / r['rows_per_s']:.2f}" if last else "-"
        print(f"{r['backend']:11} {r['label']:44} {cells}   {ratio:>6}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite,postgresql,mariadb")
    parser.add_argument("--only", default="delete,pseudonymize,quarantine,orm",
                        help="comma-separated groups: delete,pseudonymize,quarantine,orm")
    parser.add_argument("--state", default="sqlite",
                        help="state database(s) for retentiond's ledger: sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds; each contender reports its median run")
    parser.add_argument("--orm-rows", type=int, default=50_000,
                        help="rows the naive ORM loop deletes (it is slow)")
    parser.add_argument("--age-index", action=argparse.BooleanOptionalAction, default=False,
                        help="also index submitted_at (default: no; see bench/README.md)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the first run of each retentiond contender into "
                             "bench/results/*.prof")
    parser.add_argument("--whatif", default="",
                        help="what-if variants of the retentiond contenders, ';'-separated, "
                             "each a ','-separated list of bench/whatif.py patches (any, "
                             "fetch, unnest, audit, nolock); 'none' is the package as it is. "
                             "E.g. 'none;any;any,fetch,audit'")
    parser.add_argument("--out", help="JSON results file (default: bench/results/<stamp>.json)")
    parser.add_argument("--compare", nargs="+", metavar="JSON",
                        help="compare result files (e.g. 1M vs 4M) instead of running")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    if args.compare:
        compare(args.compare)
        return
    args.only = [g for g in args.only.split(",") if g]
    args.state = [s for s in args.state.split(",") if s]
    args.whatif = [("" if w.strip() == "none" else w.strip())
                   for w in (args.whatif or "none").split(";")]
    unknown = set(args.only) - set(GROUPS)
    if unknown:
        parser.error(f"unknown group(s) {sorted(unknown)}; use {sorted(GROUPS)}")
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="rtdbench-") as tmp:
        for kind in [b for b in args.backends.split(",") if b]:
            measurements += bench_backend(kind, args, Path(tmp))
    summary = report(measurements, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else RESULTS / f"bench-{args.rows}-{stamp}.json"
    out.write_text(json.dumps(summary, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
