"""A real retentiond installation for the publishing tests, and ways to look into what it wrote.

:func:`build_world` makes the demo store (5% scale), the repository's policies plus
:data:`EXTRA` (a rule whose brake stops it, an expired hold, a hold with a filter value that
must never be published), enforces them with ``retentiond run --once`` as an operator would,
then purges the quarantine batch as if its release date had passed.  Every ledger record is
written by retentiond itself.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import sqlalchemy as sa
from demo_store import build_demo_store

from retentiond import quarantine
from retentiond.ledger.chain import AuditLedger
from retentiond.ledger.state import StateDB
from retentiond.settings import load_settings
from retentiond.stores import open_store
from retentiond.stores.registry import Stores

ROOT = Path(__file__).resolve().parents[2]

HIDDEN_VALUE = "secret-folder-x"
"""A hold's filter value: it may identify a person, so no published document may show it."""

EXTRA = f"""
rules:
  - id: customers-phone-1-day
    description: Phone numbers are removed from accounts one day after sign-up.
    store: app
    table: customers
    age: {{column: created_at, older_than: 1 day}}
    action:
      type: anonymize
      columns:
        phone: {{strategy: nullify}}
    limits: {{max_rows: 1}}

holds:
  - id: old-complaint-17
    reason: A complaint closed in 2019; this hold has run out.
    case: CASE-2019-001
    store: app
    table: emails
    where: {{column: folder, op: eq, value: {HIDDEN_VALUE}}}
    expires: 2020-01-01
  - id: audit-folder-hold
    reason: Emails of one folder are kept for an ongoing audit.
    case: AUD-2026-2
    store: app
    table: emails
    where: {{column: folder, op: eq, value: {HIDDEN_VALUE}}}
"""

CONFIG = """policy_dir = "{policies}"
state_url = "{state_url}"
log_format = "json"
log_level = "warning"

[stores.app]
url = "sqlite:///{store}"

[pseudonymize]
key_id = "test-1"

[pseudonymize.keys.test-1]
file = "{key}"
"""


@dataclass(frozen=True)
class World:
    """One enforced installation: its config, state database, policies and demo store."""

    config: Path
    state_url: str
    policies: Path
    store: Path
    run: subprocess.CompletedProcess[str]


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the retentiond CLI as an operator types it."""
    return subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def build_world(directory: Path, state_url: str) -> World:
    """Build, enforce and purge (see the module docstring); the run must stop on one brake."""
    store = directory / "app.db"
    build_demo_store(store, now=datetime.now(tz=UTC), scale=0.05)
    policies = directory / "policies"
    shutil.copytree(ROOT / "policies", policies)
    (policies / "extra.yaml").write_text(EXTRA, encoding="utf-8")
    key = directory / "pseudonym.key"
    key.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    config = directory / "retentiond.toml"
    config.write_text(CONFIG.format(policies=policies, state_url=state_url, store=store, key=key),
                      encoding="utf-8")
    run = cli(config, "run", "--once")
    assert 1 == run.returncode, run.stdout + run.stderr  # the brake of customers-phone-1-day
    assert "over max_rows=1" in run.stderr
    _purge_everything(config, state_url)
    return World(config, state_url, policies, store, run)


def _purge_everything(config: Path, state_url: str) -> None:
    """Purge every quarantine batch, as the daemon would once their release dates pass."""
    settings = load_settings(config)
    stores = Stores(settings.stores, open_store)
    state = StateDB(state_url)
    try:
        later = datetime.now(tz=UTC) + timedelta(days=400)
        purged = quarantine.purge_due(stores, AuditLedger(state), now=later)
        assert purged, "the demo quarantines at least one batch"
    finally:
        stores.close()
        state.close()


# -- what the audit table says, in SQL ------------------------------------------------------

def _json(engine: sa.Engine, key: str) -> str:
    if engine.dialect.name == "sqlite":
        return f"json_extract(body, '$.{key}')"
    return f"(body::json ->> '{key}')"


def query(state_url: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of ``sql`` over the state database; ``{count}``, ``{status}`` expand per dialect."""
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    try:
        text = sql.format(count=f"CAST({_json(engine, 'count')} AS INTEGER)",
                          status=_json(engine, "status"))
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(text))]
    finally:
        engine.dispose()


def acted_per_rule(state_url: str) -> dict[str, int]:
    """Records acted on per rule: applied outcomes of the rules' own actions."""
    rows = query(state_url, "SELECT rule, SUM({count}) FROM audit_log "
                            "WHERE kind = 'batch.outcome' AND {status} = 'applied' "
                            "AND action NOT IN ('restore', 'purge') GROUP BY rule")
    return {str(rule): int(str(total)) for rule, total in rows}


def acted_per_month(state_url: str) -> dict[tuple[str, str], int]:
    """Records acted on per (month of ``at``, action)."""
    rows = query(state_url, "SELECT substr(at, 1, 7), action, SUM({count}) FROM audit_log "
                            "WHERE kind = 'batch.outcome' AND {status} = 'applied' "
                            "AND action NOT IN ('restore', 'purge') GROUP BY 1, 2")
    return {(str(month), str(action)): int(str(total)) for month, action, total in rows}


def quarantine_rows(state_url: str) -> dict[tuple[str, str], int]:
    """Rows quarantined and purged per (rule, action)."""
    rows = query(state_url, "SELECT rule, action, SUM({count}) FROM audit_log "
                            "WHERE kind = 'batch.outcome' AND {status} = 'applied' "
                            "AND action IN ('quarantine', 'purge', 'restore') GROUP BY 1, 2")
    return {(str(rule), str(action)): int(str(total)) for rule, action, total in rows}


# -- what the page says -----------------------------------------------------------------------

class Elements(HTMLParser):
    """The attributes of every element of a page, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Keep the tag name and its attributes."""
        self.found.append({"tag": tag, **{k: v or "" for k, v in attrs}})


def elements(page: str) -> list[dict[str, str]]:
    """Every element's attributes (``tag`` holds its name)."""
    parser = Elements()
    parser.feed(page)
    return parser.found


class Texts(HTMLParser):
    """The text of every element of a page, character references resolved."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_data(self, data: str) -> None:
        """Keep the text."""
        self.found.append(data)


def texts(page: str) -> list[str]:
    """Every text of the page, in document order, as a reader sees it."""
    parser = Texts()
    parser.feed(page)
    parser.close()
    return parser.found


def figures(page: str, *keys: str, value: str = "data-count") -> dict[tuple[str, ...], int]:
    """``{(attr values of keys...): int(value attr)}`` of every element that has them all."""
    return {tuple(e[k] for k in keys): int(e[value]) for e in elements(page)
            if all(k in e for k in (*keys, value))}


def copy_of(world: World, directory: Path) -> Path:
    """A config like ``world``'s over a copy of its SQLite state database: change it freely."""
    state = directory / "state.db"
    with sqlite3.connect(world.state_url.removeprefix("sqlite:///")) as source, \
            sqlite3.connect(state) as copy:
        source.backup(copy)
    config = directory / "retentiond.toml"
    text = world.config.read_text(encoding="utf-8")
    config.write_text(text.replace(world.state_url, f"sqlite:///{state}"), encoding="utf-8")
    return config
