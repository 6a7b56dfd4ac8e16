"""No personal value, filter value or password reaches the audit ledger or the logs.

Canary values are planted in personal columns, in the column a filter reads and in the policy
(a filter value, a hold on one person); every action runs, a quarantined batch is restored and
another purged, a brake stops a rule and a store with a wrong password fails.  Then every
column of every ledger record, and every log event, is searched for them.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
import structlog
from enforce_kit import AS_OF, Rig, at, stamp

from retentiond import quarantine
from retentiond.errors import LimitExceeded, StoreError
from retentiond.logs import configure_logging
from retentiond.settings import LogFormat
from retentiond.stores.sql import SqlStoreSettings

EMAIL = "canary-7f3a@example.com"
NAME = "Zebulon Canarywood"
IP = "203.0.113.219"
SEGMENT = "canary-segment-51c2"
FILTERED = "canary-filter-3b9e"
HELD = "held-canary-0d4e@example.com"
CANARIES = (EMAIL, NAME, IP, SEGMENT, FILTERED, HELD, "canary-7f3a", "Canarywood", "113.219")

RULE = """\
  - id: {id}
    description: Canary rows are acted on after 12 months.
    store: {store}
    table: {table}
    age: {{column: created_at, older_than: 12 months}}
    where: {{column: segment, op: {op}, value: {value}}}
    action: {action}
"""
RULES = {
    "t-delete": ("t_delete", "{type: delete}"),
    "t-anonymize": ("t_anonymize", "{type: anonymize, columns: {email: {strategy: pk_derived}, "
                                   "name: {strategy: mask, keep_last: 2}, "
                                   "ip: {strategy: generalize, to: network}}}"),
    "t-pseudonymize": ("t_pseudonymize", "{type: pseudonymize, columns: "
                                         "{email: {domain: email}, name: {domain: name}}}"),
    "t-quarantine": ("t_quarantine", "{type: quarantine, release_after: 1 month}"),
}
TABLES = [table for table, _ in RULES.values()]


def policy():
    """Every action on its own canary table, a braked rule and a rule on a broken store."""
    rules = [RULE.format(id=rule, store="app", table=table, op="ne", value=FILTERED,
                         action=action) for rule, (table, action) in RULES.items()]
    rules.append(RULE.format(id="t-braked", store="app", table="t_delete", op="eq",
                             value=SEGMENT, action="{type: delete}").replace(
        "    action:", "    limits: {max_rows: 1}\n    action:"))
    rules.append(RULE.format(id="t-broken", store="broken", table="t_delete", op="ne",
                             value=FILTERED, action="{type: delete}"))
    holds = [f"  - id: {table}-person\n    reason: Litigation.\n    store: app\n"
             f"    table: {table}\n    where: {{column: email, value: {HELD}}}\n"
             for table in TABLES]
    return "rules:\n" + "".join(rules) + "holds:\n" + "".join(holds)


def fill(db, table):
    """Canary rows: 1-6 due, 7 filtered out, 8 too young, 9 held, 10 without an age."""
    db.run(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"segment VARCHAR(40), email VARCHAR(80), name VARCHAR(80), ip VARCHAR(45))")
    rows = [{"id": n, "created_at": at(2024, 1, n), "segment": SEGMENT,
             "email": EMAIL, "name": NAME, "ip": IP} for n in range(1, 7)]
    rows += [{**rows[0], "id": 7, "segment": FILTERED},
             {**rows[0], "id": 8, "created_at": at(2026, 3, 1)},
             {**rows[0], "id": 9, "email": HELD},
             {**rows[0], "id": 10, "created_at": None}]
    db.insert(table, rows)


@pytest.fixture
def canaries(db):
    """The four canary tables."""
    for table in TABLES:
        fill(db, table)
    return db


@dataclass(frozen=True)
class Urls:
    """The app store's URL and password, and a broken store's."""

    app: str
    password: str | None
    broken: str
    wrong_password: str | None


@pytest.fixture
def urls(db, server, backend, tmp_path):
    """The app store as a user with a password, and a store with an unknown user.

    On SQLite: the database file, and a missing one.
    """
    if server.kind == "sqlite":
        return Urls(backend, None, f"sqlite:///{tmp_path / 'missing' / 'app.db'}", None)
    password, wrong = "Pw" + secrets.token_hex(10), "Wrong" + secrets.token_hex(10)
    user = server.user(password)
    if server.kind == "postgresql":
        db.run(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {user}",
               f"GRANT CREATE, USAGE ON SCHEMA public TO {user}")
    else:
        db.run(f"GRANT ALL PRIVILEGES ON `{sa.make_url(backend).database}`.* "
               f"TO '{user}'@'127.0.0.1'")
    url = sa.make_url(backend).set(username=user, password=password)
    broken = url.set(username="rt_nobody_" + secrets.token_hex(4), password=wrong)
    return Urls(url.render_as_string(hide_password=False), password,
                broken.render_as_string(hide_password=False), wrong)


@pytest.fixture(params=["events", "json"])
def logs(request):
    """What was logged, as text: captured events, or JSON lines rendered into a buffer."""
    if request.param == "events":
        with structlog.testing.capture_logs() as events:
            yield lambda: "\n".join(repr(event) for event in events)
        return
    saved = structlog.get_config()
    buffer = io.StringIO()
    configure_logging(LogFormat.JSON, "debug", stream=buffer)
    yield buffer.getvalue
    structlog.configure(**saved)


def scenario(setup, shelf):
    """Plan everything, run every action, trip a brake, fail a store, restore and purge.

    Quarantine is handled through ``shelf``, a registry without the broken store.
    """
    setup.engine.plan_all(as_of=AS_OF)
    with pytest.raises(LimitExceeded):
        setup.run("t-braked")
    for rule in RULES:
        setup.run(rule)
    with pytest.raises(StoreError):
        setup.run("t-broken")
    first, *_ = shelf.get("app").quarantined()
    quarantine.restore(shelf, setup.ledger, first.batch_id, "put back for the test",
                       by="tester")
    setup.run("t-quarantine")
    quarantine.purge_due(shelf, setup.ledger, now=AS_OF + timedelta(days=400))


def ledger_text(state):
    """Every column of every ledger record, as text."""
    with state.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM audit_log ORDER BY seq").all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def found(text, secrets_):
    """The secrets that occur in ``text``."""
    return [secret for secret in secrets_ if secret and secret in text]


def test_no_canary_or_password_reaches_the_ledger_or_the_logs(canaries, rig, keyring, urls,
                                                              logs):
    """Nothing planted in rows, filters or holds, and no password, is in the ledger or logs."""
    setup: Rig = rig(policy(), app=SqlStoreSettings(url=urls.app),
                     stores={"broken": SqlStoreSettings(url=urls.broken)}, keyring=keyring,
                     validate=False)
    shelf = rig(policy(), app=SqlStoreSettings(url=urls.app), validate=False).engine.stores

    scenario(setup, shelf)

    secrets_ = (*CANARIES, urls.password, urls.wrong_password)
    assert ([], []) == (found(ledger_text(setup.state), secrets_), found(logs(), secrets_))
    assert ["batch.applied", "brake.stopped", "plan.failed", "t-broken"] == [
        word for word in ("batch.applied", "brake.stopped", "plan.failed", "t-broken")
        if word in logs()]
    assert {"t_delete": 4, "t_quarantine": 4} == {
        t: len(canaries.rows(t)) for t in ("t_delete", "t_quarantine")}


APOSTROPHE = "o'canary-7f3a@example.com"
LOGINS = """\
rules:
  - id: logins-anonymize
    description: Login addresses are cut to their network after 12 months.
    store: app
    table: logins
    age: {column: created_at, older_than: 12 months}
    action: {type: anonymize, columns: {ip: {strategy: generalize, to: network}}}
"""


def test_a_failed_batch_never_puts_row_values_into_the_ledger_or_logs(db, rig, state, logs):
    """A batch the database refuses (a unique key quoting an e-mail) leaks no value anywhere.

    Two addresses of one person, cut to one network, collide in UNIQUE (email, ip); MariaDB
    quotes the whole key, e-mail included, in its message, and the e-mail has an apostrophe.
    """
    db.run(f"CREATE TABLE logins (id INTEGER PRIMARY KEY, created_at {stamp(db.kind)}, "
           f"email VARCHAR(80), ip VARCHAR(45), CONSTRAINT uq_login UNIQUE (email, ip))")
    db.insert("logins", [{"id": n, "created_at": at(2024, 1, n), "email": APOSTROPHE, "ip": ip}
                         for n, ip in ((1, IP), (2, "203.0.113.17"))])
    setup: Rig = rig(LOGINS)

    with pytest.raises(StoreError):
        setup.run("logins-anonymize")

    assert ["rolled back"] == [body["status"] for body in setup.outcomes(status=None)]
    assert ([], []) == (found(ledger_text(state), CANARIES), found(logs(), CANARIES))
