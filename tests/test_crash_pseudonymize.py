"""Crash test for ``pseudonymize``: SIGKILL runs at random points; no value is rewritten twice.

Each backend gets a ``members`` table (about two thirds of the rows older than the rule's 12
months, ages scattered over the ids) and a pseudonymize rule over ``email`` with batches of 25;
the ledger is a SQLite file.  Runs are forked and killed as in tests/test_crash.py (the same
fork server and kill timing).  After every kill:

(a) every email is its original value or that value's pseudonym: none is a pseudonym of a
    pseudonym (a batch applied twice) or anything else, and no young row is touched;
(b) the rows pseudonymized are exactly the keys of the batches the ledger says were applied,
    or, for a batch whose outcome the kill prevented, its marker says; no key is in two of
    them, and an applied batch rewrote as many rows as its intent announced;
(c) the done bits record exactly the rows pseudonymized: a bit set for a row not rewritten
    would keep that row's personal value forever; a bit missing would let the next run
    pseudonymize a pseudonym;
(d) the hash chain verifies, and no batch has two outcomes.

A last, unkilled run then pseudonymizes everything that is due, and one more acts on nothing.
``RETENTIOND_CRASH_KILLS=N`` runs the long version, as for tests/test_crash.py.
"""

from __future__ import annotations

import json
import random
import signal
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_crash import (
    BATCH_SIZE,
    KILLS,
    LONG_KILLS,
    MOST_BATCHES,
    SEED,
    WINDOWS,
    Pace,
    Reading,
    Site,
    Worker,
    tagged,
    wait_for_sessions_to_end,
)
from test_crash import make_site as crash_site

from retentiond.keyring import Keyring
from retentiond.ledger.chain import AuditLedger, Kind
from retentiond.ledger.state import StateDB
from retentiond.stores.sql.keeping import VOID, done_bits_table, marker_table

ROWS = 1500
RULE = "members-pseudonymize"
SECRET = b"crash-test pseudonym secret, 32+ bytes long"
POLICY = f"""\
rules:
  - id: {RULE}
    description: Members' emails are pseudonymized 12 months after they joined.
    store: app
    table: members
    age:
      column: joined_at
      older_than: 12 months
    action:
      type: pseudonymize
      columns: {{email: {{domain: customer-email, length: 16}}}}
    batch_size: {BATCH_SIZE}
    limits:
      max_percent: 100
      max_rows: 10000000
"""

metadata = sa.MetaData()
members = sa.Table(
    "members", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("joined_at", sa.DateTime, nullable=False),
    sa.Column("email", sa.String(64), nullable=False),
)
markers = marker_table("retentiond_batches")
done_bits = done_bits_table("retentiond_pseudonymized_bits")
keyring = Keyring("k1", SECRET)
pseudonym = keyring.pseudonymizer("customer-email", 16)


class Members:
    """The store's ``members`` as the test made them, and what is in them now."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.NullPool)
        self.rng = rng
        self.original: dict[int, str] = {}
        self.old: set[int] = set()
        self.next_id = 1

    def add(self, count: int) -> int:
        """Insert ``count`` members, two thirds of them due, ages scattered; how many are due."""
        now = datetime.now(tz=UTC).replace(tzinfo=None)
        rows = []
        for number in range(self.next_id, self.next_id + count):
            due = self.rng.random() < 2 / 3
            days = self.rng.uniform(400, 4000) if due else self.rng.uniform(0, 300)
            email = f"member{number}@example.org"
            rows.append({"id": number, "joined_at": now - timedelta(days=days), "email": email})
            self.original[number] = email
            if due:
                self.old.add(number)
        with self.engine.begin() as connection:
            connection.execute(members.insert(), rows)
        self.next_id += count
        return sum(row["id"] in self.old for row in rows)

    def emails(self) -> dict[int, str]:
        """Id -> email, as the store has them now."""
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.select(members.c.id, members.c.email)).all())

    def recorded(self) -> set[int]:
        """The ids whose bit the rule has set in the done-bits table."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(done_bits.name):
                return set()
            words = connection.execute(sa.select(done_bits.c.word, done_bits.c.bits)
                                       .where(done_bits.c.rule == RULE)).all()
            return {word * 32 + bit for word, bits in words for bit in range(32)
                    if bits >> bit & 1}

    def markers(self) -> dict[str, list[int]]:
        """Batch id -> the keys its marker lists (void markers left out)."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table(markers.name):
                return {}
            rows = connection.execute(sa.select(markers.c.batch_id, markers.c.payload)
                                      .where(markers.c.payload != VOID)).all()
            return {batch_id: [key[0] for key in json.loads(payload)["keys"]]
                    for batch_id, payload in rows}

    def close(self) -> None:
        """Dispose of the engine."""
        self.engine.dispose()


def judge(reading: Reading, store: Members) -> tuple[list[str], Counter[str]]:
    """Problems with (a) to (d); and where the kill left each still open intent."""
    reading.read()
    problems = list(reading.problems)
    found = store.markers()
    applied: Counter[int] = Counter()
    open_at: Counter[str] = Counter()
    for batch_id, batch in reading.batches.items():
        body = batch.outcome.entry.body if batch.outcome is not None else None
        if body is None:  # open: the marker alone says whether it happened
            open_at[WINDOWS[batch_id in found]] += 1
            keys = found.get(batch_id, [])
        elif body["status"] == "applied":
            keys = [key[0] for key in body["keys"]]
            if found.get(batch_id) != keys:
                problems.append(f"batch {batch_id}: applied, but its marker lists "
                                f"{found.get(batch_id)}, not {keys}")
        else:
            keys = []
            if batch_id in found:
                problems.append(f"batch {batch_id}: {body['status']}, but it left a marker")
        if keys and len(keys) != batch.intent.entry.body["count"]:
            problems.append(f"batch {batch_id}: {len(keys)} rows rewritten, "
                            f"{batch.intent.entry.body['count']} announced")
        applied.update(keys)
    emails = store.emails()
    rewritten = {key for key, email in emails.items() if email != store.original[key]}
    problems += [f"row {key}: {emails[key]!r} is neither its value nor that value's pseudonym"
                 for key in sorted(rewritten) if emails[key] != pseudonym(store.original[key])]
    problems += [f"row {key}: young, yet rewritten" for key in sorted(rewritten - store.old)]
    problems += [f"row {key}: in {count} applied batches" for key, count in applied.items()
                 if count > 1]
    listed = set(applied)
    if listed != rewritten:
        problems.append(f"rewritten but in no applied batch: {sorted(rewritten - listed)}; "
                        f"in an applied batch but not rewritten: {sorted(listed - rewritten)}")
    recorded = store.recorded()
    if recorded != rewritten:
        problems.append(f"done bits without a rewrite: {sorted(recorded - rewritten)}; "
                        f"rewrites without a done bit: {sorted(rewritten - recorded)}")
    if not reading.ledger.verify().ok:
        problems.append(f"the ledger does not verify: {reading.ledger.verify()}")
    return problems, open_at


def make_site(root: Path, store_url: str, kind: str) -> Site:
    """The rule and its pseudonym key, a SQLite ledger, and a config naming ``store_url``."""
    key = root / "pseudonym.key"
    key.write_bytes(SECRET)
    return crash_site(root, store_url, kind, f"sqlite:///{root / 'state.db'}",
                      f'\n[pseudonymize]\nkey_id = "k1"\n\n[pseudonymize.keys.k1]\n'
                      f'file = "{key}"\n', cascade=False, policy=POLICY)


def crash(server: Any, backend: str, tmp_path: Path, kills: int, rng: random.Random) -> None:
    """Kill ``kills`` runs at random points, judging after each; then let two runs finish."""
    site = make_site(tmp_path, backend, server.kind)
    store = Members(backend, rng)
    state = StateDB(tagged(site.state_url))
    reading = Reading(AuditLedger(state))
    landings: Counter[str] = Counter()
    killed = 0
    try:
        metadata.create_all(store.engine)
        due = store.add(ROWS)
        pace = Pace()
        worker = Worker(site.config, site.root)
        try:
            for attempt in range(1, 4 * kills + 1):
                if killed >= kills and all(landings[window] for window in WINDOWS):
                    break
                if due < (MOST_BATCHES + 4) * BATCH_SIZE:
                    due += store.add(ROWS // 2)
                run = worker.start()
                how = pace.wait(worker, run, rng)
                killed += worker.kill(run) == -signal.SIGKILL
                pace.learn(run)
                wait_for_sessions_to_end([site.store_url])
                problems, open_at = judge(reading, store)
                assert [] == problems, (f"seed {SEED}, {server.kind}, run {attempt} ({how}): "
                                        + "".join(run.lines[-3:]), problems)
                landings.update(open_at)
                due = len(store.old) - len(store.recorded())
        finally:
            worker.close()

        finished = site.cli("run", "--once")
        again = site.cli("run", "--once")

        assert (0, 0) == (finished.returncode, again.returncode), finished.stderr + again.stderr
        problems, open_at = judge(reading, store)
        assert ([], Counter()) == (problems, open_at)
        assert store.old == store.recorded()
        ends = [r.entry.body for r in reading.ledger.records() if r.entry.kind is Kind.RUN_END]
        assert ("done", 0) == (ends[-1]["status"], ends[-1]["acted"])
        print(f"\n{server.kind}: {killed} kills; open intents left by kills: "  # noqa: T201
              f"{dict(landings)}", file=sys.stderr)
        assert kills <= killed
        assert [True, True] == [landings[window] > 0 for window in WINDOWS], landings
    finally:
        state.close()
        store.close()


def test_sigkill_during_pseudonymize_rewrites_each_row_once_and_records_it(server, backend,
                                                                           tmp_path):
    """KILLS runs killed at random points: rewrites, done bits and the ledger agree."""
    crash(server, backend, tmp_path, KILLS,
          random.Random(f"{SEED}-pseudonymize-{server.kind}"))  # noqa: S311


@pytest.mark.slow
@pytest.mark.skipif(not LONG_KILLS, reason="set RETENTIOND_CRASH_KILLS=N for the long run")
@pytest.mark.timeout(300 + 3 * LONG_KILLS)
def test_sigkill_during_pseudonymize_at_many_more_points(server, backend, tmp_path):
    """The long run: RETENTIOND_CRASH_KILLS kills per backend, the same checks."""
    crash(server, backend, tmp_path, LONG_KILLS,
          random.Random(f"{SEED}-pseudonymize-long-{server.kind}"))  # noqa: S311


@pytest.mark.parametrize("server", [pytest.param("sqlite", marks=pytest.mark.sqlite)],
                         indirect=True)
def test_the_checks_see_a_row_pseudonymized_twice_or_left_unrecorded(server, backend, tmp_path):
    """The checks are not blind: a second rewrite or a missing done bit is named."""
    site = make_site(tmp_path, backend, server.kind)
    store = Members(backend, random.Random(SEED))  # noqa: S311
    state = StateDB(site.state_url)
    try:
        metadata.create_all(store.engine)
        store.add(60)
        assert 0 == site.cli("run", "--once").returncode
        reading = Reading(AuditLedger(state))
        assert [] == judge(reading, store)[0]
        twice, unrecorded = sorted(store.old)[:2]
        with store.engine.begin() as connection:
            connection.execute(members.update().where(members.c.id == twice)
                               .values(email=pseudonym(pseudonym(store.original[twice]))))
            connection.execute(done_bits.update().where(done_bits.c.word == unrecorded // 32)
                               .values(bits=done_bits.c.bits.op("&")(~(1 << unrecorded % 32))))

        problems = judge(reading, store)[0]

        assert any(f"row {twice}: " in problem for problem in problems), problems
        assert any(f"rewrites without a done bit: [{unrecorded}]" in p for p in problems), problems
    finally:
        state.close()
        store.close()
