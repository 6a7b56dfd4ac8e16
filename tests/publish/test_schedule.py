"""The published retention schedule: every promise, period, action and hold in force, in words."""

from __future__ import annotations

import html
import json
import shutil
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from publish_kit import HIDDEN_VALUE, cli, copy_of, elements, texts

from retentiond.actions import action_for
from retentiond.errors import AuditError
from retentiond.policy.loader import load_policies
from retentiond.publish.schedule import (
    StateHold,
    build_schedule,
    read_state,
    render,
    state_holds,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ACTIVE_HOLDS = ("complaint-4711", "litigation-4711-billing", "audit-folder-hold")
EXPIRED_HOLD = "old-complaint-17"


def _text(output: str, fmt: str) -> str:
    """What a reader sees: HTML entities resolved."""
    return html.unescape(output) if fmt == "html" else output


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_every_rule_is_stated_with_its_promise_period_and_action(shared_world, fmt):
    """Each rule's description, period and action, and every hold in force, are in the document.

    The internal edition, which names the holds (the public one counts them).
    """
    result = cli(shared_world.config, "schedule", "--internal", "--format", fmt)
    assert 0 == result.returncode, result.stderr
    text = _text(result.stdout, fmt)
    policies = load_policies(shared_world.policies)
    missing = []
    for rule in policies.rules:
        description = " ".join(rule.description.split())
        wanted = [description, f"{rule.age.older_than}", f"{rule.age.column}",
                  rule.action.type if fmt == "json" else action_for(rule.action).outcome]
        missing += [f"{rule.id}: {w}" for w in wanted if w not in text]
    for retention in policies.retentions:
        missing += [f"{retention.id}: {w}" for w in (retention.reason, str(retention.period))
                    if w not in text]
    for hold in policies.holds:
        if hold.id in ACTIVE_HOLDS:
            missing += [f"{hold.id}: {w}" for w in (hold.id, hold.reason) if w not in text]
    assert [] == missing
    assert EXPIRED_HOLD not in text
    assert HIDDEN_VALUE not in text


@pytest.mark.parametrize(("audience", "hold_lists"), [
    ("internal", {"holds_across_tables"}), ("public", set())])
def test_the_json_document_has_stable_keys(shared_world, audience, hold_lists):
    """The JSON schedule has exactly the documented keys at every level, and sorted output.

    The public edition has the same keys but the hold lists: of holds, only their counts.
    """
    result = cli(shared_world.config, "schedule", f"--{audience}", "--format", "json")
    document = json.loads(result.stdout)
    tables = [t for c in document["categories"] for t in c["tables"]]
    rules = [r for t in tables for r in t["rules"]]
    holds = [h for t in tables for h in t.get("holds", [])]
    retentions = [r for t in tables for r in t["minimum_retentions"]]
    assert ({"as_of", "audience", "backups", "categories", "format", "held_across_tables",
             "policy_set", "unpromised",
             *hold_lists} == set(document))
    assert ("retentiond-schedule/5", audience) == (document["format"], document["audience"])
    assert {frozenset({"goes_with", "held", "minimum_retentions", "rules", "store", "table",
                       *({"holds"} if hold_lists else ())})} == {
        frozenset(t) for t in tables}
    assert 3 == sum(t["held"] for t in tables)  # the three holds in force, in both editions
    assert {frozenset({"action", "age_column", "applies_to", "description", "details",
                       "enabled", "id", "outcome", "period", "runs", "timezone"})} == {
        frozenset(r) for r in rules}
    assert ({frozenset({"applies_to", "case", "expires", "id", "placed_at", "reason", "source",
                        "store", "table"})} if hold_lists else set()) == {
        frozenset(h) for h in holds}
    assert {frozenset({"applies_to", "column", "id", "period", "reason", "timezone"})} == {
        frozenset(r) for r in retentions}
    assert result.stdout == json.dumps(document, indent=2, sort_keys=True,
                                       ensure_ascii=False) + "\n"


def test_rules_are_grouped_by_table_under_their_category(shared_world):
    """Each store.table appears once, under the category of the file that declares it."""
    result = cli(shared_world.config, "schedule", "--format", "json")
    document = json.loads(result.stdout)
    placed = [(c["name"], f'{t["store"]}.{t["table"]}') for c in document["categories"]
              for t in c["tables"]]
    assert len(placed) == len({table for _, table in placed})
    assert ("Emails", "app.emails") in placed
    assert ("Support", "app.support_tickets") in placed
    support = next(t for c in document["categories"] for t in c["tables"]
                   if t["table"] == "support_tickets")
    assert ["tickets-pseudonymize-90-days", "tickets-quarantine-12-months"] == [
        r["id"] for r in support["rules"]]


def test_hold_filters_are_named_by_column_never_by_value(shared_world):
    """A hold's scope names its filter's columns; the filter's values are not published."""
    policies = load_policies(shared_world.policies)
    schedule = build_schedule(policies, as_of=NOW)
    hold = next(h for h in schedule.holds if h.id == "audit-folder-hold")
    assert "some records (selected by folder)" == hold.applies_to
    for fmt in ("md", "html", "json"):
        assert HIDDEN_VALUE not in render(schedule, fmt)


HOLDS_TABLE = """
CREATE TABLE holds (
    id VARCHAR(16) PRIMARY KEY, store VARCHAR(64), table_name VARCHAR(128),
    where_filter TEXT, subject_kind VARCHAR(64), subject_value TEXT, reason TEXT NOT NULL,
    case_id VARCHAR(64), placed_by VARCHAR(128) NOT NULL, placed_at VARCHAR(32) NOT NULL,
    until VARCHAR(32), released_at VARCHAR(32), released_by VARCHAR(128),
    release_reason TEXT)
"""
PLACED = [
    {"id": "H-0000000a", "store": "app", "table_name": "emails",
     "where_filter": '{"column":"customer_id","op":"eq","value":90210}', "subject_kind": None,
     "subject_value": None, "reason": "Litigation hold for one customer's emails.",
     "case_id": "LIT-9", "placed_by": "counsel", "placed_at": "2026-05-01T09:00:00+00:00",
     "until": None, "released_at": None},
    {"id": "H-0000000b", "store": None, "table_name": None, "where_filter": None,
     "subject_kind": "customer", "subject_value": "alice@example.com",
     "reason": "Regulator inquiry about one customer.", "case_id": "REG-1",
     "placed_by": "counsel", "placed_at": "2026-05-02T09:00:00+00:00", "until": "2026-12-31",
     "released_at": None},
    {"id": "H-0000000c", "store": "app", "table_name": "invoices", "where_filter": None,
     "subject_kind": None, "subject_value": None, "reason": "Released audit hold.",
     "case_id": None, "placed_by": "counsel", "placed_at": "2026-01-02T09:00:00+00:00",
     "until": None, "released_at": "2026-02-01T09:00:00+00:00"},
    {"id": "H-0000000d", "store": "app", "table_name": "invoices", "where_filter": None,
     "subject_kind": None, "subject_value": None, "reason": "Expired hold.", "case_id": None,
     "placed_by": "counsel", "placed_at": "2025-01-02T09:00:00+00:00", "until": "2026-01-31",
     "released_at": None},
]


def _with_holds_table(url: str, rows) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(HOLDS_TABLE)
            columns = ", ".join(rows[0])
            values = ", ".join(f":{c}" for c in rows[0])
            conn.execute(sa.text(f"INSERT INTO holds ({columns}) VALUES ({values})"), rows)
    finally:
        engine.dispose()


def test_holds_placed_at_run_time_join_the_schedule_while_in_force(state_url, shared_world):
    """Active holds of the state's holds table are published; released and expired ones not."""
    _with_holds_table(state_url, PLACED)
    with read_state(state_url) as engine:
        placed = state_holds(engine)
    schedule = build_schedule(load_policies(shared_world.policies), as_of=NOW,
                              state_holds=placed)
    in_force = {h.id: h for h in schedule.holds if h.source == "state"}
    assert ["H-0000000a", "H-0000000b"] == sorted(in_force)
    assert "some records (selected by customer_id)" == in_force["H-0000000a"].applies_to
    assert "the records of one customer" == in_force["H-0000000b"].applies_to
    assert ["H-0000000b"] == [h.id for h in schedule.across]
    for fmt in ("md", "html", "json"):
        text = _text(render(schedule, fmt), fmt)
        assert "H-0000000a" in text
        assert "Regulator inquiry about one customer." in text
        assert ("every store" in text) if fmt != "json" else ('"store": null' in text)
        assert "H-0000000c" not in text
        assert "H-0000000d" not in text
        assert "alice@example.com" not in text
        assert "90210" not in text


def test_without_a_holds_table_only_policy_holds_count(state_url):
    """A state database without a holds table (or no SQLite file at all) adds no holds."""
    with read_state(state_url) as engine:
        assert [] == state_holds(engine)
    with read_state("sqlite:////nonexistent/state.db") as engine:
        assert engine is None
        assert [] == state_holds(engine)


def test_a_holds_table_of_unknown_shape_is_an_error(state_url):
    """A holds table without the columns a hold needs stops publishing: no hold is left out."""
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE holds (name VARCHAR(20), why TEXT)")
    engine.dispose()
    with read_state(state_url) as engine, pytest.raises(AuditError) as caught:
        state_holds(engine)
    assert ("the state database's holds table has no column for id, store, table_name, "
            "where_filter, subject_kind, subject_value, reason, case_id, placed_by, placed_at, "
            "until, released_at, released_by, release_reason (it has name, why); this "
            "retentiond cannot read its holds") == caught.value.what


def test_the_schedule_command_writes_a_file(shared_world, tmp_path):
    """--output writes the document whole and says where."""
    target = tmp_path / "schedule.html"
    result = cli(shared_world.config, "schedule", "--format", "html", "--output", str(target))
    assert 0 == result.returncode, result.stderr
    assert f"wrote {target}" == result.stdout.strip()
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_hold_placed_with_the_hold_command_is_published_until_released(shared_world, tmp_path):
    """`retentiond hold add` puts a hold in the schedule; `hold release` takes it out again."""
    config = copy_of(shared_world, tmp_path)
    placed = cli(config, "hold", "add", "--store", "app", "--table", "emails", "--where",
                 "customer_id=90210", "--reason", "Complaint about a delivery.", "--case",
                 "C-77", "--by", "counsel")
    assert 0 == placed.returncode, placed.stderr
    hold = placed.stdout.split()[2]
    held = json.loads(cli(config, "schedule", "--internal", "--format", "json").stdout)
    released = cli(config, "hold", "release", hold, "--reason", "settled", "--by", "counsel")
    after = json.loads(cli(config, "schedule", "--internal", "--format", "json").stdout)
    emails = next(t for c in held["categories"] for t in c["tables"] if t["table"] == "emails")
    assert 0 == released.returncode, released.stderr
    assert {"id": hold, "source": "state", "case": "C-77",
            "applies_to": "some records (selected by customer_id)"} == {
        k: v for h in emails["holds"] if h["id"] == hold for k, v in h.items()
        if k in {"id", "source", "case", "applies_to"}}
    assert "90210" not in json.dumps(held)
    assert hold not in json.dumps(after)


MARKUP = "<script>alert('x')</script>"
"""Free text of a policy or a hold that would be a script if it were not escaped."""

MARKED_UP = f"""
rules:
  - id: notes-30-days
    description: "Notes are deleted after 30 days. {MARKUP}"
    store: app
    table: notes
    age: {{column: created_at, older_than: 30 days}}
    action: {{type: delete}}
retain:
  - id: notes-kept-for-tax
    reason: "{MARKUP}"
    store: app
    table: notes
    column: created_at
    for: 10 days
"""


def test_policy_and_hold_text_is_shown_as_text_never_as_markup(tmp_path):
    """A rule's description, a retention's reason and a hold's id, case and reason, escaped."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "notes.yaml").write_text(MARKED_UP, encoding="utf-8")
    placed = StateHold(id=MARKUP, reason=MARKUP, case=MARKUP, store="app", table="notes",
                       columns=(), subject=None, until=None, placed_at=None, released_at=None)
    page = render(build_schedule(load_policies(policies), as_of=NOW, state_holds=[placed]),
                  "html")
    shown = texts(page)
    assert [] == [e for e in elements(page) if e["tag"] == "script"]
    assert f"Notes are deleted after 30 days. {MARKUP}" in shown
    assert MARKUP in shown  # the retention's reason, and the hold's id
    assert f" (case {MARKUP}): {MARKUP} Keeps every record until released." in shown
    assert MARKUP in {e.get("data-hold") for e in elements(page)}


def _with_subject_hold(world, tmp_path):
    """A copy of ``world`` whose email rule maps customers, with a hold on customer 90210."""
    config = copy_of(world, tmp_path)
    policies = tmp_path / "policies"
    shutil.copytree(world.policies, policies)
    emails = policies / "emails.yaml"
    emails.write_text(emails.read_text(encoding="utf-8").replace(
        "    table: emails\n    age:", "    table: emails\n    subjects: {customer: customer_id}\n"
        "    age:", 1), encoding="utf-8")
    config.write_text(config.read_text(encoding="utf-8").replace(
        str(world.policies), str(policies)), encoding="utf-8")
    placed = cli(config, "hold", "add", "--subject", "customer=90210", "--reason",
                 "Regulator inquiry.", "--case", "REG-77", "--by", "counsel")
    assert 0 == placed.returncode, placed.stderr
    return config, placed.stdout.split()[2]


IDENTIFYING = ("complaint-4711", "litigation-4711-billing", "audit-folder-hold",  # hold ids
               "CASE-2026-017", "LIT-2026-004", "AUD-2026-2", "REG-77",  # case ids
               "Complaint by customer 4711", "Regulator inquiry.",  # reasons
               "4711", "90210", HIDDEN_VALUE,  # filter and subject values
               "selected by", "customer_id", "folder",  # filters
               "the records of one customer")  # subjects
"""What the public schedule never shows of the holds: the internal edition shows each."""


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_the_public_schedule_names_no_hold_case_filter_or_subject(shared_world, tmp_path, fmt):
    """By default (and with --public) holds are counted: no id, case, reason, filter, subject."""
    config, subject_hold = _with_subject_hold(shared_world, tmp_path)

    at = ("--as-of", f"{NOW:%Y-%m-%d}", "--format", fmt)
    default = cli(config, "schedule", *at)
    public = cli(config, "schedule", "--public", *at)
    internal = cli(config, "schedule", "--internal", *at)

    assert (0, 0, 0) == (default.returncode, public.returncode, internal.returncode)
    assert default.stdout == public.stdout
    shown, named = _text(public.stdout, fmt), _text(internal.stdout, fmt)
    assert [] == [word for word in (*IDENTIFYING, subject_hold) if word in shown]
    assert [] == [word for word in (*IDENTIFYING, subject_hold)
                  if word not in named and word not in {"4711", "90210", HIDDEN_VALUE}]
    assert [] == [word for word in ("90210", HIDDEN_VALUE) if word in named]
    if fmt == "json":
        counts = json.loads(public.stdout)
        assert (3, 1) == (sum(t["held"] for c in counts["categories"] for t in c["tables"]),
                          counts["held_across_tables"])
    else:
        assert (1, 1) == (shown.count("2 legal holds are in force on some of these records"),
                          shown.count("1 legal hold is in force on some of these records"))
        assert "1 legal hold is in force on some of the records of several tables" in shown
        assert "Internal edition" in named
        assert "Internal edition" not in shown


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_the_schedule_states_how_long_backups_keep_what_was_deleted(shared_world, tmp_path,
                                                                   fmt):
    """With ``[residual]`` set, every format says how long backups keep a deleted record.

    And recovery logs, and so when no copy of it remains: the longer of the two.
    """
    config = copy_of(shared_world, tmp_path)
    config.write_text(config.read_text(encoding="utf-8")
                      + '\n[residual]\nbackups = "35 days"\nwal = "2 months"\n', encoding="utf-8")

    result = cli(config, "schedule", "--format", fmt)

    assert 0 == result.returncode, result.stderr
    words = ("A record deleted or anonymized here is still in the backups taken before, until "
             "they expire: backups are kept for 35 days and recovery logs for 2 months. So no "
             "copy of it remains 2 months after it was deleted or anonymized.")
    if fmt == "json":
        assert {"kept_for": "35 days", "archived_wal_kept_for": "2 months", "words": words} == (
            json.loads(result.stdout)["backups"])
    else:
        assert words in " ".join(_text(result.stdout, fmt).split())


def test_an_unstated_backup_retention_is_said_to_be_unstated(shared_world):
    """Without ``[residual] backups`` the schedule says that it does not state it.

    Rather than leave the reader to think that deleted means gone from every copy.
    """
    result = cli(shared_world.config, "schedule", "--format", "md")

    assert ("## Backups\n\nHow long our backups keep a deleted or anonymized record is not "
            "stated in this schedule.\n") in result.stdout
