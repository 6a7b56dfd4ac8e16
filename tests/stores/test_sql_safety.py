"""What SqlStore promises about safety: readers cannot write, errors are ours and keep secrets."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from retentiond.errors import StoreError, StoreUnavailable
from retentiond.policy.filters import Condition
from retentiond.policy.periods import Cutoff
from retentiond.stores.base import AgeBound, Guard, Reach, Selection
from retentiond.stores.sql import SqlStore, SqlStoreSettings

STAMP = {"sqlite": "DATETIME", "postgresql": "TIMESTAMP", "mariadb": "DATETIME"}
CUTOFF_AT = datetime(2024, 1, 1)  # noqa: DTZ001 - naive on purpose: the column is naive
CUTOFF = Cutoff(local=CUTOFF_AT, aware=CUTOFF_AT.replace(tzinfo=UTC), day=CUTOFF_AT.date())
SELECTION = Selection(
    "people",
    AgeBound("left_at", CUTOFF),
    guards=(Guard("hold", "h-7", where=Condition(column="team", value=7)),),
)
WRITES = [
    "INSERT INTO people (id, team) VALUES (9999, 1)",
    "UPDATE people SET team = 0",
    "DELETE FROM people",
]


@pytest.fixture
def people(db):
    """A parent table of 200 people (ages scattered over ids) with a child table of badges."""
    db.run(
        f"CREATE TABLE people (id INTEGER PRIMARY KEY, team INTEGER, left_at {STAMP[db.kind]})",
        "CREATE TABLE badges (id INTEGER PRIMARY KEY, person_id INTEGER,"
        " CONSTRAINT fk_badges FOREIGN KEY (person_id) REFERENCES people (id) ON DELETE CASCADE)",
    )
    start = datetime(2023, 6, 1)  # noqa: DTZ001 - naive on purpose: the column is naive
    db.insert(
        "people",
        [
            {"id": n, "team": n % 10, "left_at": start + timedelta(days=(n * 53) % 200)}
            for n in range(1, 201)
        ],
    )
    db.insert("badges", [{"id": n, "person_id": n // 2 + 1} for n in range(1, 201)])


def _state(db):
    """Everything that would show a write: content, and the server's own write counters."""
    content = [db.rows("people"), db.rows("badges")]
    if db.kind == "sqlite":
        return content, hashlib.sha256(Path(sa.make_url(db.url).database).read_bytes()).hexdigest()
    if db.kind == "postgresql":
        db.settle()
        with db.engine.connect() as connection:
            connection.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
            counters = connection.exec_driver_sql(
                "SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0),"
                " coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables",
            ).one()
        return content, tuple(counters)
    with db.engine.connect() as connection:
        checksums = connection.exec_driver_sql("CHECKSUM TABLE people, badges").all()
    return content, [tuple(row)[1] for row in checksums]


def _session_writes(reader, kind):
    """MariaDB: rows this session wrote, deleted or updated (Handler_* are per session)."""
    if kind != "mariadb":
        return None
    rows = reader.connection.exec_driver_sql(
        "SHOW SESSION STATUS WHERE Variable_name IN"
        " ('Handler_write', 'Handler_update', 'Handler_delete')",
    ).all()
    return {name: int(value) for name, value in rows}


@pytest.mark.parametrize("statement", WRITES, ids=["insert", "update", "delete"])
@pytest.mark.usefixtures("people")
def test_reader_connection_refuses_writes(db, sql_store, statement):
    """INSERT, UPDATE or DELETE sent through a reader's own connection fails on every backend."""
    refusal = {
        "sqlite": "attempt to write a readonly database",
        "postgresql": "cannot execute {} in a read-only transaction",
        "mariadb": "Cannot execute statement in a READ ONLY transaction",
    }[db.kind].format(statement.split()[0])

    with sql_store.reader() as reader, pytest.raises(sa.exc.DBAPIError) as caught:
        reader.connection.exec_driver_sql(statement)

    assert refusal in str(caught.value.orig)


@pytest.mark.usefixtures("people")
def test_bound_values_never_reach_error_messages(sql_store):
    """Both engines hide bound parameters: a failing statement's message omits their values."""
    secret = f"Sekr3t{secrets.token_hex(6)}"
    failing = sa.text("SELECT missing_column FROM people WHERE team = :value")

    messages = []
    with sql_store.engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as caught:
        connection.execute(failing, {"value": secret})
    messages.append(str(caught.value))
    with sql_store.reader() as reader, pytest.raises(sa.exc.DBAPIError) as caught:
        reader.connection.execute(failing, {"value": secret})
    messages.append(str(caught.value))

    assert [(False, True)] * 2 == [
        (secret in message, "[SQL parameters hidden due to hide_parameters=True]" in message)
        for message in messages
    ]


@pytest.mark.usefixtures("people")
def test_full_read_changes_nothing(db, sql_store):
    """Attempted writes, a census and a complete key walk leave the store exactly as it was."""
    before = _state(db)
    for statement in WRITES:
        with sql_store.reader() as reader, pytest.raises(sa.exc.DBAPIError):
            reader.connection.exec_driver_sql(statement)

    with sql_store.reader() as reader:
        writes_before = _session_writes(reader, db.kind)
        census = reader.census(SELECTION)
        fk = sql_store.schema("people").referenced_by[0]
        reached = reader.reached(SELECTION, [Reach((fk,), "cascade")])
        walked, after = [], None
        while batch := reader.keys(SELECTION, after=after, limit=16):
            walked += batch
            after = batch[-1]
        writes_after = _session_writes(reader, db.kind)
        if db.kind == "postgresql":
            # Make this session's statistics visible to the check below when it ends.
            reader.connection.exec_driver_sql("SELECT pg_stat_force_next_flush()")

    assert (before, writes_before, census.eligible, True) == (
        _state(db),
        writes_after,
        len(walked),
        reached[0].rows > 0,
    )


@pytest.mark.usefixtures("people")
def test_every_connection_gets_the_session_settings(db, make_store):
    """Every connection, reader or writer, gets the session settings of its database."""
    store = make_store(lock_timeout_ms=1500, statement_timeout_ms=30000)
    probe = {
        "sqlite": "PRAGMA foreign_keys",
        "postgresql": "SELECT current_setting('lock_timeout') || ' ' ||"
        " current_setting('statement_timeout') || ' jit ' || current_setting('jit')",
        "mariadb": "SELECT CONCAT_WS(' ', @@innodb_lock_wait_timeout, @@lock_wait_timeout,"
        " @@max_statement_time)",
    }[db.kind]
    expected = {"sqlite": 1, "postgresql": "1500ms 30s jit off",
                "mariadb": "2 2 30.000000"}[db.kind]

    with store.engine.connect() as connection:
        writer = connection.exec_driver_sql(probe).scalar_one()
    with store.reader() as reader:
        read = reader.connection.exec_driver_sql(probe).scalar_one()

    assert (expected, expected) == (writer, read)


@pytest.mark.usefixtures("people")
def test_writer_engine_enforces_foreign_keys(sql_store):
    """Deleting a parent through the write engine cascades (SQLite too: foreign_keys=ON)."""
    with sql_store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM people WHERE id = 1")
        orphans = connection.exec_driver_sql(
            "SELECT count(*) FROM badges WHERE person_id NOT IN (SELECT id FROM people)",
        ).scalar_one()

    assert 0 == orphans


def test_readers_use_the_plan_url(db, server, make_store):
    """When plan_url is set, readers connect through it, while schema() uses the url."""
    plan = server.database()
    plan_db = type(db)(plan, db.kind)
    try:
        plan_db.run("CREATE TABLE only_in_plan (id INTEGER PRIMARY KEY)")
    finally:
        plan_db.engine.dispose()
    store = make_store(plan_url=plan)

    with store.reader() as reader:
        seen_by_reader = sa.inspect(reader.connection).has_table("only_in_plan")

    assert (True, None) == (seen_by_reader, store.schema("only_in_plan"))


@pytest.mark.usefixtures("people")
def test_a_select_only_role_can_plan(db, server, make_store):
    """A plan_url role that may only SELECT runs a full census (PostgreSQL, MariaDB)."""
    if db.kind == "sqlite":
        pytest.skip("SQLite has no roles; its readers are read-only by file mode")
    password = secrets.token_hex(8)
    user = server.user(password, select_on=db.url)
    plan = sa.make_url(db.url).set(username=user, password=password)
    store = make_store(plan_url=plan.render_as_string(hide_password=False))

    with store.reader() as reader:
        census = reader.census(SELECTION)

    assert 200 == census.population


def _password_file(tmp_path):
    secret = f"Sekr3t{secrets.token_hex(6)}"
    path = tmp_path / "password"
    path.write_text(secret + "\n", encoding="utf-8")
    return secret, path


def test_unreachable_store_is_unavailable_in_one_line_without_password(
    server,
    make_store,
    tmp_path,
):
    """A closed port (SQLite: a missing directory) raises StoreUnavailable: one line, no secret.

    SQLite takes no password (see the last test), so there the secret is trivially absent.
    """
    secret, password_file = _password_file(tmp_path)
    url, reason = {
        "sqlite": (f"sqlite:///{tmp_path}/missing/app.db", "unable to open database file"),
        "postgresql": ("postgresql+psycopg://postgres@127.0.0.1:1/app", "Connection refused"),
        "mariadb": ("mysql+pymysql://root@127.0.0.1:1/app", "Connection refused"),
    }[server.kind]
    store = make_store(url, password_file=None if server.kind == "sqlite" else password_file)

    with pytest.raises(StoreUnavailable) as caught:
        store.ping()

    message = str(caught.value)
    assert (1, False, True, True) == (
        len(message.splitlines()),
        secret in message,
        reason in message,
        "check stores.app.url" in message,
    )


def test_rejected_login_is_unavailable_in_one_line_without_password(
    server,
    backend,
    make_store,
    tmp_path,
):
    """A refused login raises StoreUnavailable whose one-line message never holds the password.

    MariaDB gets a wrong password.  This PostgreSQL trusts 127.0.0.1 (any password is accepted),
    so the refusal there is a role without LOGIN; for SQLite (no passwords) it is a file that is
    not a database.
    """
    secret, password_file = _password_file(tmp_path)
    if server.kind == "sqlite":
        path = tmp_path / "garbage.db"
        path.write_bytes(b"this is not a database, " * 100)
        url, reason = f"sqlite:///{path}", "file is not a database"
    else:
        user = server.user(secrets.token_hex(8), login=server.kind != "postgresql")
        url = sa.make_url(backend).set(username=user).render_as_string(hide_password=False)
        reason = "not permitted to log in" if server.kind == "postgresql" else "Access denied"
    store = make_store(url, password_file=None if server.kind == "sqlite" else password_file)

    with pytest.raises(StoreUnavailable) as caught:
        store.ping()

    message = str(caught.value)
    assert (1, False, True) == (len(message.splitlines()), secret in message, reason in message)


@pytest.mark.usefixtures("people")
def test_database_errors_become_store_errors(db, sql_store):
    """A failing statement (the table vanished after reflection) raises StoreError, one line."""
    sql_store.schema("people")
    db.run("DROP TABLE badges", "DROP TABLE people")

    with sql_store.reader() as reader, pytest.raises(StoreError) as caught:
        reader.census(SELECTION)

    message = str(caught.value)
    assert (StoreError, 1, True) == (
        type(caught.value),
        len(message.splitlines()),
        message.startswith("store 'app': cannot count 'people': "),
    )


def test_in_memory_sqlite_has_no_reader():
    """An in-memory SQLite store refuses readers: a second connection would see another database."""
    store = SqlStore("app", SqlStoreSettings(url="sqlite://"))
    try:
        with pytest.raises(StoreError) as caught, store.reader():
            pass
    finally:
        store.close()

    assert "in-memory" in caught.value.what


def test_unsupported_database_is_a_store_error():
    """A URL of a database retentiond does not support is refused when the store is made."""
    with pytest.raises(StoreError) as caught:
        SqlStore("app", SqlStoreSettings(url="mssql+pyodbc://user@host/db"))

    assert "unsupported database 'mssql'" == caught.value.what


def test_sqlite_store_with_a_password_is_a_store_error(tmp_path):
    """A password file on a SQLite store is a configuration mistake, said so up front."""
    _, password_file = _password_file(tmp_path)
    settings = SqlStoreSettings(url=f"sqlite:///{tmp_path}/app.db", password_file=password_file)

    with pytest.raises(StoreError) as caught:
        SqlStore("app", settings)

    assert "a SQLite database takes no password" == caught.value.what


@pytest.mark.usefixtures("people")
def test_a_reader_sees_one_snapshot(db, sql_store):
    """A row committed elsewhere during a read stays invisible to it; the next reader sees it.

    SQLite runs in WAL mode here: with a rollback journal the writer would wait for the reader.
    """
    if db.kind == "sqlite":
        db.run("PRAGMA journal_mode=WAL")
    late = {"id": 1000, "team": 1, "left_at": CUTOFF_AT - timedelta(days=1)}

    with sql_store.reader() as reader:
        first = reader.census(SELECTION)
        db.insert("people", [late])
        again = reader.census(SELECTION)
    with sql_store.reader() as reader:
        after = reader.census(SELECTION)

    assert (first, first.eligible + 1) == (again, after.eligible)
