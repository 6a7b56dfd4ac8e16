"""A realistic, obviously fake customer database for ``make demo`` and for tests.

:func:`build_demo_store` writes an SQLite file with six tables that a retention policy has
something to say about: customers, their emails and attachments, a usage log, invoices and
support tickets.  The foreign keys cover every ``ON DELETE`` behaviour an action must respect
(CASCADE, SET NULL, RESTRICT).

Every date lies in the two years before ``now`` and inside the lifetime of the customer it
belongs to (from ``created_at`` to ``closed_at`` or ``now``).  Ids follow time in the
append-only tables (usage events, invoices, tickets) but are scattered over time in customers
and emails, as after a migration, so selections cannot assume that age rises with the key.

Customer 4711 (present whenever there are 4711 customers: always at scale 1.0) is the one the
demo talks about: an open account from nearly two years ago with at least two dozen emails,
about half of them older than twelve months, and a run of invoices.

Personal data comes from short lists and reserved ranges only: ``example.com`` and
``example.org`` addresses, ``+1-555-01xx`` phone numbers, documentation IP ranges
(RFC 5737, RFC 3849).  The same seed, ``now`` and scale give the same file contents.

It lives beside ``demo/run_demo.py``, outside the installed package: only the demo and the
tests use it.  On its own: ``python demo/demo_store.py PATH [--now ISO] [--scale X]``.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from dateutil.relativedelta import relativedelta
from sqlalchemy import (
    CHAR,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

Row = dict[str, object]

DEMO_CUSTOMER_ID = 4711
"""The customer the demo walks through; exists whenever the scale yields 4711 customers."""

BASE_ROWS: Mapping[str, int] = MappingProxyType(
    {
        "customers": 5_000,
        "emails": 40_000,
        "email_attachments": 10_000,
        "usage_events": 100_000,
        "invoices": 20_000,
        "support_tickets": 5_000,
    },
)
"""Rows per table at scale 1.0, parents before children."""

METADATA = MetaData()
"""The demo schema.  Every foreign key column is indexed: without one, SQLite scans the whole
child table for each parent row a CASCADE, SET NULL or RESTRICT has to look at."""

customers = Table(
    "customers",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("full_name", String(120), nullable=False),
    Column("phone", String(32), nullable=True),
    Column("country", CHAR(2), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

emails = Table(
    "emails",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("sender", String(255), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("folder", String(20), nullable=False),
    Column("submitted_at", DateTime, nullable=True),
)

email_attachments = Table(
    "email_attachments",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "email_id",
        Integer,
        ForeignKey("emails.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("filename", String(255), nullable=False),
    Column("size_bytes", Integer, nullable=False),
)

usage_events = Table(
    "usage_events",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="SET NULL"),
        nullable=True,
        index=True,
    ),
    Column("event", String(40), nullable=False),
    Column("ip_address", String(45), nullable=True),
    Column("user_agent", String(255), nullable=True),
    Column("occurred_at", DateTime, nullable=False),
)

invoices = Table(
    "invoices",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("number", String(20), nullable=False, unique=True),
    Column("amount_cents", Integer, nullable=False),
    Column("billing_name", String(120), nullable=False),
    Column("billing_address", String(255), nullable=False),
    Column("issued_at", Date, nullable=False),
)

support_tickets = Table(
    "support_tickets",
    METADATA,
    Column("id", Integer, primary_key=True),
    Column(
        "customer_id",
        Integer,
        ForeignKey("customers.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    Column("requester_email", String(255), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("closed_at", DateTime, nullable=True),
)

# --- what the fake data is made of ---------------------------------------------------------

_FIRST_NAMES = (
    "Erika", "Max", "Jane", "John", "Maria", "Ahmed", "Yuki", "Olga", "Pedro", "Amara",
    "Lars", "Chen", "Fatima", "Noah", "Ines", "Tomasz", "Priya", "Kofi", "Sofia", "Emil",
)  # fmt: skip
_LAST_NAMES = (
    "Mustermann", "Doe", "Roe", "Sample", "Tester", "Example", "Placeholder", "Dummy",
    "Muster", "Exemplar", "Specimen", "Fictive", "Madeup", "Nobody", "Pretend", "Mockley",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org")
_COUNTRIES = ("US", "DE", "GB", "FR", "NL", "SE", "ES", "IT", "CA", "AU")
_COUNTRY_WEIGHTS = (30, 20, 12, 8, 6, 5, 5, 5, 5, 4)
_STREETS = ("Example Street", "Sample Road", "Test Avenue", "Demo Lane", "Fiction Way")
_CITIES = ("Springfield", "Riverside", "Fairview", "Lakeside", "Greenville", "Testville")

_FOLDERS = ("inbox", "sent", "drafts")
_FOLDER_WEIGHTS = (70, 25, 5)
_INBOX_SENDERS = (
    "billing@example.org", "support@example.org", "newsletter@example.org",
    "no-reply@example.org", "team@example.com", "events@example.com",
)  # fmt: skip
_EMAIL_SUBJECTS = (
    "Your invoice is ready", "Welcome aboard", "Re: question about my plan",
    "Password changed", "Meeting next week", "Quarterly newsletter", "Re: refund request",
    "Shipping confirmation", "Your feedback matters", "Contract renewal",
)  # fmt: skip
_SENTENCES = (
    "Thanks for getting back to me so quickly.",
    "Please find the details below.",
    "Let me know if anything is unclear.",
    "I have attached the document we talked about.",
    "Could you check the numbers once more?",
    "We will follow up by the end of the week.",
    "The change takes effect on the first of next month.",
    "I am available on Tuesday afternoon.",
)
_ATTACHMENTS = (
    ("invoice", "pdf"), ("contract", "pdf"), ("screenshot", "png"), ("photo", "jpg"),
    ("report", "xlsx"), ("notes", "txt"), ("scan", "pdf"),
)  # fmt: skip

_EVENTS = (
    "login", "logout", "page_view", "search", "download", "api_call", "password_reset",
    "settings_changed",
)  # fmt: skip
_EVENT_WEIGHTS = (20, 12, 40, 12, 6, 8, 1, 1)
_USER_AGENTS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0 Safari/537.36"
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.5 Safari/605.1.15"
    ),
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148"
    ),
    "retentiond-demo-client/1.0 (+https://example.com/bot)",
)
_IPV4_PREFIXES = ("192.0.2", "198.51.100", "203.0.113")
_IPV6_BASE = int(ipaddress.IPv6Address("2001:db8::"))
_IPV6_HOST_BITS = 96  # the documentation prefix is a /32

_TICKET_SUBJECTS = (
    "Cannot log in", "Wrong amount on invoice", "Please close my account",
    "Export of my data", "App crashes on start", "Change billing address",
)  # fmt: skip
_PLANS_CENTS = (900, 1_900, 4_900, 9_900)

# --- proportions --------------------------------------------------------------------------

_CLOSED_SHARE = 0.15
_NO_PHONE_SHARE = 0.25
_NULL_SUBMITTED_SHARE = 0.005
_ANONYMOUS_EVENT_SHARE = 0.10
_IPV6_SHARE = 0.25
_NO_IP_SHARE = 0.03
_NO_USER_AGENT_SHARE = 0.05
_OTHER_REQUESTER_SHARE = 0.10
_ONE_OFF_INVOICE_SHARE = 0.10
_RECENT_TICKET_OPEN_SHARE = 0.5
_OLD_TICKET_OPEN_SHARE = 0.01
_RECENT_TICKET = timedelta(days=14)
_LONGEST_TICKET = timedelta(days=10)
_DEMO_EMAILS = 24
_DEMO_INVOICES = 8
_DEMO_JOINED_AFTER_START = timedelta(days=14)
"""Customer 4711 joined this long after the start of the window: nearly two years ago."""


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`build_demo_store` wrote: the number of rows in each table."""

    rows: Mapping[str, int]

    @property
    def total(self) -> int:
        """All rows in all tables."""
        return sum(self.rows.values())

    def __str__(self) -> str:
        counts = " ".join(f"{table}={count}" for table, count in self.rows.items())
        return f"{counts} ({self.total} rows)"


@dataclass(frozen=True)
class _Customer:
    """What child rows need to know about their customer."""

    id: int
    first_name: str
    full_name: str
    email: str
    created_at: datetime
    closed_at: datetime | None
    now: datetime

    @property
    def end(self) -> datetime:
        """The last moment the customer can have done anything."""
        return self.closed_at or self.now


def build_demo_store(
    path: Path,
    *,
    now: datetime,
    seed: int = 4711,
    scale: float = 1.0,
) -> DemoSummary:
    """Write the demo database to ``path`` (replacing it) and return its row counts.

    ``now`` must be timezone-aware; every date lies in the two years before it.  ``scale``
    multiplies every table's row count (at least one row each).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware, e.g. datetime.now(UTC)")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    # SQLite has no time zones: store naive UTC, to the second.
    end = now.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    start = end - relativedelta(years=2)
    counts = {table: max(1, round(base * scale)) for table, base in BASE_ROWS.items()}
    rows = _generate(random.Random(seed), counts, start, end)  # noqa: S311 - fake data, not secrets
    _write(path, rows)
    return DemoSummary(MappingProxyType({table: len(rows[table]) for table in BASE_ROWS}))


def _generate(
    rng: random.Random,
    counts: Mapping[str, int],
    start: datetime,
    now: datetime,
) -> dict[str, list[Row]]:
    """Make all rows of all tables; the order of the calls is part of what a seed reproduces."""
    people = _customers(rng, counts["customers"], start, now)
    email_rows = _emails(rng, counts["emails"], people)
    return {
        "customers": [_customer_row(rng, person) for person in people],
        "emails": email_rows,
        "email_attachments": _attachments(rng, counts["email_attachments"], len(email_rows)),
        "usage_events": _usage_events(rng, counts["usage_events"], people, start, now),
        "invoices": _invoices(rng, counts["invoices"], people),
        "support_tickets": _tickets(rng, counts["support_tickets"], people),
    }


def _write(path: Path, rows: Mapping[str, list[Row]]) -> None:
    """Create the schema and insert every table in one transaction, foreign keys enforced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A journal left beside a deleted file would be replayed into the new one.
    for leftover in (path, *(path.with_name(path.name + s) for s in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{path}", hide_parameters=True)
    event.listen(engine, "connect", _enforce_foreign_keys)
    try:
        with engine.begin() as conn:
            if conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() != 1:
                raise RuntimeError("SQLite did not switch foreign keys on")
            METADATA.create_all(conn)
            for table in METADATA.sorted_tables:
                conn.execute(table.insert(), rows[table.name])
    finally:
        engine.dispose()


def _enforce_foreign_keys(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Switch SQLite's foreign keys on; they are off per connection by default."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# --- tables -------------------------------------------------------------------------------


def _customers(rng: random.Random, count: int, start: datetime, now: datetime) -> list[_Customer]:
    """Make customers 1..count, created anywhere in the window; about 15% closed since."""
    people = []
    for customer_id in range(1, count + 1):
        if customer_id == DEMO_CUSTOMER_ID:
            created, closed = start + _DEMO_JOINED_AFTER_START, None
        else:
            created = _random_moment(rng, start, now)
            closed = _random_moment(rng, created, now) if rng.random() < _CLOSED_SHARE else None
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        email = f"{first}.{last}.{customer_id}@{rng.choice(_DOMAINS)}".lower()
        people.append(
            _Customer(customer_id, first, f"{first} {last}", email, created, closed, now),
        )
    return people


def _customer_row(rng: random.Random, person: _Customer) -> Row:
    phone = None if rng.random() < _NO_PHONE_SHARE else f"+1-555-01{rng.randrange(100):02d}"
    return {
        "id": person.id,
        "email": person.email,
        "full_name": person.full_name,
        "phone": phone,
        "country": rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0],
        "created_at": person.created_at,
        "closed_at": person.closed_at,
    }


def _emails(rng: random.Random, count: int, people: Sequence[_Customer]) -> list[Row]:
    """Write emails of random customers; 4711's spread evenly over its whole lifetime.

    A few have no ``submitted_at`` (drafts never sent): doubt about a date keeps a record.
    """
    demo = _demo_customer(people)
    reserved = min(count, _DEMO_EMAILS) if demo else 0
    rows = [_email(rng, person, _random_moment(rng, person.created_at, person.end))
            for person in _random_owners(rng, people, count - reserved)]  # fmt: skip
    if demo:
        stamps = _spread(rng, demo.created_at, demo.end, reserved)
        rows += [_email(rng, demo, stamp) for stamp in stamps]
    # Undated drafts among the random ones only, so 4711's promised history stays intact.
    undated = max(1, round(count * _NULL_SUBMITTED_SHARE))
    for index in rng.sample(range(count - reserved), min(undated, count - reserved)):
        rows[index].update(folder="drafts", sender=rows[index]["customer_email"], submitted_at=None)
    rng.shuffle(rows)
    for email_id, row in enumerate(rows, start=1):
        row["id"] = email_id
        del row["customer_email"]
    return rows


def _email(rng: random.Random, person: _Customer, submitted_at: datetime) -> Row:
    folder = rng.choices(_FOLDERS, _FOLDER_WEIGHTS)[0]
    sender = rng.choice(_INBOX_SENDERS) if folder == "inbox" else person.email
    body = " ".join(rng.sample(_SENTENCES, rng.randint(2, 4)))
    return {
        "customer_id": person.id,
        "customer_email": person.email,  # dropped before insert; undated drafts need it
        "sender": sender,
        "subject": rng.choice(_EMAIL_SUBJECTS),
        "body": f"Hi {person.first_name},\n\n{body}\n\nBest regards",
        "folder": folder,
        "submitted_at": submitted_at,
    }


def _attachments(rng: random.Random, count: int, email_count: int) -> list[Row]:
    """Attach files to random emails (some get several); ids follow the emails."""
    owners = sorted(rng.randint(1, email_count) for _ in range(count))
    rows: list[Row] = []
    for attachment_id, email_id in enumerate(owners, start=1):
        stem, extension = rng.choice(_ATTACHMENTS)
        rows.append(
            {
                "id": attachment_id,
                "email_id": email_id,
                "filename": f"{stem}-{rng.randint(1, 999):03d}.{extension}",
                "size_bytes": rng.randint(2_000, 8_000_000),
            },
        )
    return rows


def _usage_events(
    rng: random.Random,
    count: int,
    people: Sequence[_Customer],
    start: datetime,
    now: datetime,
) -> list[Row]:
    """Log what customers did: append-only, so ids follow time; some visitors never signed in."""
    rows: list[Row] = []
    for owner in _random_owners(rng, people, count):
        person = None if rng.random() < _ANONYMOUS_EVENT_SHARE else owner
        active = (person.created_at, person.end) if person else (start, now)
        occurred = _random_moment(rng, *active)
        agent = None if rng.random() < _NO_USER_AGENT_SHARE else rng.choice(_USER_AGENTS)
        rows.append(
            {
                "customer_id": person.id if person else None,
                "event": rng.choices(_EVENTS, _EVENT_WEIGHTS)[0],
                "ip_address": _ip_address(rng),
                "user_agent": agent,
                "occurred_at": occurred,
            },
        )
    return _numbered_by(rows, "occurred_at")


def _ip_address(rng: random.Random) -> str | None:
    """Pick an address from the documentation ranges, IPv4 or IPv6, in canonical text form."""
    if rng.random() < _NO_IP_SHARE:
        return None
    if rng.random() < _IPV6_SHARE:
        return str(ipaddress.IPv6Address(_IPV6_BASE + rng.getrandbits(_IPV6_HOST_BITS)))
    return f"{rng.choice(_IPV4_PREFIXES)}.{rng.randint(1, 254)}"


def _invoices(rng: random.Random, count: int, people: Sequence[_Customer]) -> list[Row]:
    """Issue invoices, numbered per year in issue order as accounting rules require."""
    demo = _demo_customer(people)
    reserved = min(count, _DEMO_INVOICES) if demo else 0
    issues = [(_random_moment(rng, person.created_at, person.end).date(), person)
              for person in _random_owners(rng, people, count - reserved)]  # fmt: skip
    if demo:
        stamps = _spread(rng, demo.created_at, demo.end, reserved)
        issues += [(stamp.date(), demo) for stamp in stamps]
    issues.sort(key=lambda issue: issue[0])  # stable: equal dates keep their generated order
    rows: list[Row] = []
    per_year: dict[int, int] = {}
    for invoice_id, (issued_at, person) in enumerate(issues, start=1):
        per_year[issued_at.year] = per_year.get(issued_at.year, 0) + 1
        number = f"INV-{issued_at.year}-{per_year[issued_at.year]:06d}"
        rows.append({"id": invoice_id, "number": number, **_invoice(rng, person, issued_at)})
    return rows


def _invoice(rng: random.Random, person: _Customer, issued_at: date) -> Row:
    one_off = rng.random() < _ONE_OFF_INVOICE_SHARE
    amount = rng.randint(500, 250_000) if one_off else rng.choice(_PLANS_CENTS)
    address = (
        f"{rng.randint(1, 199)} {rng.choice(_STREETS)}, "
        f"{rng.randint(10_000, 99_999)} {rng.choice(_CITIES)}"
    )
    return {
        "customer_id": person.id,
        "amount_cents": amount,
        "billing_name": person.full_name,
        "billing_address": address,
        "issued_at": issued_at,
    }


def _tickets(rng: random.Random, count: int, people: Sequence[_Customer]) -> list[Row]:
    """File support tickets; recent ones are often still open, those of closed accounts never."""
    rows: list[Row] = []
    for person in _random_owners(rng, people, count):
        created = _random_moment(rng, person.created_at, person.end)
        recent = person.now - created < _RECENT_TICKET
        open_share = _RECENT_TICKET_OPEN_SHARE if recent else _OLD_TICKET_OPEN_SHARE
        is_open = person.closed_at is None and rng.random() < open_share
        done_by = min(created + _LONGEST_TICKET, person.end)
        closed = None if is_open else _random_moment(rng, created, done_by)
        rows.append(
            {
                "customer_id": person.id,
                "requester_email": _requester(rng, person),
                "subject": rng.choice(_TICKET_SUBJECTS),
                "body": " ".join(rng.sample(_SENTENCES, 2)) + f" Name: {person.full_name}.",
                "status": "open" if is_open else "closed",
                "created_at": created,
                "closed_at": closed,
            },
        )
    return _numbered_by(rows, "created_at")


def _requester(rng: random.Random, person: _Customer) -> str:
    """Use the account's address, or sometimes a private one the customer wrote from."""
    if rng.random() < _OTHER_REQUESTER_SHARE:
        return f"{person.first_name}{rng.randint(1, 99)}@example.org".lower()
    return person.email


# --- helpers ------------------------------------------------------------------------------


def _random_moment(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """Pick a whole second between ``start`` and ``end``, both included."""
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randint(0, max(span, 0)))


def _spread(rng: random.Random, start: datetime, end: datetime, count: int) -> list[datetime]:
    """Pick ``count`` moments, one in each of ``count`` equal slices of the span: no clumps."""
    step = (end - start) / max(count, 1)
    return [_random_moment(rng, start + step * i, start + step * (i + 1)) for i in range(count)]


def _random_owners(rng: random.Random, people: Sequence[_Customer], count: int) -> list[_Customer]:
    """Draw ``count`` customers, each in proportion to how long it has been active.

    Activity is a rate: a customer of two years writes more than one of two days.  Drawing
    uniformly instead would pack all the rows of new customers into the last few days.
    """
    lifetimes = accumulate(int((p.end - p.created_at).total_seconds()) + 1 for p in people)
    return rng.choices(people, cum_weights=list(lifetimes), k=count)


def _demo_customer(people: Sequence[_Customer]) -> _Customer | None:
    return people[DEMO_CUSTOMER_ID - 1] if len(people) >= DEMO_CUSTOMER_ID else None


def _numbered_by(rows: list[Row], column: str) -> list[Row]:
    """Sort by a date column (stable, so still deterministic) and number the ids from 1."""
    ordered = sorted(rows, key=lambda row: str(row[column]))
    for row_id, row in enumerate(ordered, start=1):
        row["id"] = row_id
    return ordered


# --- command line -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python demo/demo_store.py PATH [--now ISO] [--scale X] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python demo/demo_store.py",
        description="Build the retentiond demo database (SQLite).",
    )
    parser.add_argument("path", type=Path, help="SQLite file to create (replaced if present)")
    parser.add_argument(
        "--now",
        type=_aware,
        default=None,
        help="ISO 8601 moment the data is relative to; UTC if no offset (default: now)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="row count factor (default 1)")
    parser.add_argument("--seed", type=int, default=4711, help="random seed (default 4711)")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    now = args.now or datetime.now(UTC)
    summary = build_demo_store(args.path, now=now, seed=args.seed, scale=args.scale)
    print(f"demo store {args.path}: {summary}")
    return 0


def _aware(text: str) -> datetime:
    """Parse an ISO 8601 moment; one without an offset is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date and time: {text!r}") from err
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    raise SystemExit(main())
