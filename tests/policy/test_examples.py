"""The example policies in ``policies/``: they load, state their promises and cover it all."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from retentiond.actions import REGISTRY
from retentiond.policy.loader import PATTERNS, load_policies
from retentiond.policy.model import Hold

EXAMPLES = Path(__file__).resolve().parents[2] / "policies"


def example_files():
    """Return every policy file shipped in ``policies/``, sorted."""
    return sorted(path for pattern in PATTERNS for path in EXAMPLES.glob(pattern))


def test_the_examples_are_there():
    """The project ships example policy files."""
    assert [] != example_files()


@pytest.mark.parametrize("path", example_files(), ids=lambda path: path.name)
def test_each_example_file_loads_on_its_own(tmp_path, path):
    """Every example file is valid by itself, without problems."""
    shutil.copy(path, tmp_path / path.name)

    loaded = load_policies(tmp_path)

    assert {path.name} == declared_in(loaded)


def test_the_example_set_loads_as_a_whole():
    """All example files together load: unique ids, no contradictions, no outlived rules."""
    loaded = load_policies(EXAMPLES)

    assert {path.name for path in example_files()} == declared_in(loaded)


def declared_in(loaded):
    """The names of the files the entries and the data map of ``loaded`` come from."""
    mapped = loaded.data_map
    sources = [*loaded.sources.values(), *mapped.kind_sources.values(), *mapped.table_sources]
    return {source.file.name for source in sources}


def test_the_examples_map_every_demo_table_to_the_customer():
    """The example data map covers the demo's six tables, attachments through their email."""
    mapped = load_policies(EXAMPLES).data_map

    assert {"customer"} == set(mapped.subjects)
    assert [("customers", ("id",)), ("emails", ("customer_id",)),
            ("email_attachments", ("email_id", "customer_id")),
            ("usage_events", ("customer_id",)), ("invoices", ("customer_id",)),
            ("support_tickets", ("customer_id",))] == [
        (table, way) for _store, table, way in mapped.ways("customer")]


def test_every_example_rule_describes_its_promise():
    """Each rule says in words what it promises; each hold and retention gives its reason."""
    loaded = load_policies(EXAMPLES)

    assert [] == [rule.id for rule in loaded.rules if not rule.description.strip()]
    assert [] == [entry.id for entry in (*loaded.holds, *loaded.retentions)
                  if not entry.reason.strip()]


def test_the_examples_show_every_action_a_hold_and_a_retention():
    """There is at least one rule per registered action, one hold and one minimum retention."""
    loaded = load_policies(EXAMPLES)

    assert set(REGISTRY) == {rule.action.type for rule in loaded.rules}
    assert (True, True) == (len(loaded.holds) >= 1, len(loaded.retentions) >= 1)


def test_rule_versions_are_stable_across_loads():
    """Loading the same files twice gives every rule the same version."""
    first = {rule.id: rule.version for rule in load_policies(EXAMPLES).rules}
    second = {rule.id: rule.version for rule in load_policies(EXAMPLES).rules}

    assert first == second
    assert len(first) == len(set(first.values()))


def test_a_rule_version_changes_with_a_value_and_only_its_own(tmp_path):
    """Changing one value of one rule changes that rule's version and no other."""
    directory = tmp_path / "policies"
    shutil.copytree(EXAMPLES, directory)
    before = {rule.id: rule.version for rule in load_policies(directory).rules}
    emails = directory / "emails.yaml"
    emails.write_text(emails.read_text(encoding="utf-8").replace(
        "older_than: 12 months", "older_than: 13 months"), encoding="utf-8")

    after = {rule.id: rule.version for rule in load_policies(directory).rules}

    assert ["emails-12-months"] == [rule_id for rule_id in before
                                    if before[rule_id] != after[rule_id]]


def test_a_rule_version_ignores_comments_and_layout(tmp_path):
    """Comments, flow style and key order are not part of what a rule says."""
    directory = tmp_path / "policies"
    shutil.copytree(EXAMPLES, directory)
    before = {rule.id: rule.version for rule in load_policies(directory).rules}
    emails = directory / "emails.yaml"
    text = emails.read_text(encoding="utf-8")
    block_age = "    age:\n      column: submitted_at\n      older_than: 12 months\n"
    assert block_age in text
    text = text.replace(block_age, "    age: {older_than: 12 months, column: submitted_at}\n")
    text = re.sub(r"[ \t]*#.*$", "", text, flags=re.MULTILINE)
    emails.write_text("# reformatted\n" + text, encoding="utf-8")

    after = {rule.id: rule.version for rule in load_policies(directory).rules}

    assert before == after


def complaint_hold():
    """Return the example hold on customer 4711's emails, which expires on 2027-12-31."""
    (hold,) = [h for h in load_policies(EXAMPLES).holds if h.id == "complaint-4711"]
    return hold


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2027, 12, 30, 12, 0, tzinfo=UTC), True),
        (datetime(2027, 12, 31, 0, 0, tzinfo=UTC), True),
        (datetime(2027, 12, 31, 23, 59, 59, tzinfo=UTC), True),
        (datetime(2028, 1, 1, 0, 0, tzinfo=UTC), False),
        (datetime(2030, 6, 1, 0, 0, tzinfo=UTC), False),
    ],
)
def test_a_hold_with_an_expiry_date_holds_through_that_day(at, expected):
    """Before and on its expiry date a hold is active; from the next day it is not."""
    hold = complaint_hold()

    assert date(2027, 12, 31) == hold.expires
    assert expected == hold.active(at)


def test_a_hold_without_expiry_is_always_active():
    """A hold with no ``expires`` stays until someone removes it."""
    (hold,) = [h for h in load_policies(EXAMPLES).holds if h.id == "litigation-4711-billing"]

    assert None is hold.expires
    assert (True, True) == (hold.active(datetime(2000, 1, 1, tzinfo=UTC)),
                            hold.active(datetime(2999, 1, 1, tzinfo=UTC)))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2027, 12, 31, 11, 59, tzinfo=UTC), True),
        (datetime(2027, 12, 31, 12, 0, tzinfo=UTC), False),
        (datetime(2027, 12, 31, 12, 59, tzinfo=ZoneInfo("Europe/Berlin")), True),
        (datetime(2027, 12, 31, 13, 0, tzinfo=ZoneInfo("Europe/Berlin")), False),
    ],
)
def test_a_hold_with_an_expiry_moment_ends_at_that_instant(at, expected):
    """An ``expires`` with a time and offset ends the hold exactly then, in any zone."""
    hold = Hold.model_validate({
        "id": "h", "reason": "r", "store": "app", "table": "emails",
        "expires": "2027-12-31T12:00:00+00:00",
    })

    assert expected == hold.active(at)
