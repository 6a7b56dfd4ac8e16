"""``explain``: one record's rules, dates, protections and decision, and what was done to it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from evidence_kit import AS_OF, CUSTOMER, OLD, RULE, YOUNG, verdict, where

from retentiond.publish.explain import explain

KEEP_UNTIL = OLD.replace(year=OLD.year + 1, tzinfo=UTC).isoformat()
"""Twelve months after row 1, 2, 3 and 5's submission (UTC, the rule's timezone)."""


def _explain(site, key: int, *extra: str):
    return site.json("explain", "--store", "app", "--table", "emails", "--key", str(key), *extra)


def test_a_due_record_is_explained_with_its_dates(enforced):
    """A record with nothing protecting it: due since the end of the period, acted on then."""
    as_of = (datetime.now(tz=UTC) + timedelta(days=730)).date().isoformat()
    found = verdict(_explain(enforced, 4, "--as-of", as_of), RULE)
    young_until = YOUNG.replace(year=YOUNG.year + 1, tzinfo=UTC).isoformat()

    assert {"matches": True, "age_column": "submitted_at", "age": YOUNG.isoformat(),
            "keep_until": young_until, "act_at": young_until, "protected_by": [],
            "decision": "act"} == {k: found[k] for k in ("matches", "age_column", "age",
                                                          "keep_until", "act_at",
                                                          "protected_by", "decision")}
    assert f"due since {young_until} and nothing protects it: the next run will delete it" == \
        found["reason"]


def test_a_held_record_names_its_hold_and_has_no_date_to_act(enforced):
    """A record under an open-ended hold: the hold by id and reason; no act-at date."""
    found = verdict(_explain(enforced, 2), RULE)
    text = enforced.ok("explain", "--store", "app", "--table", "emails", "--key", "2")

    assert ("held", KEEP_UNTIL, None) == (found["decision"], found["keep_until"], found["act_at"])
    assert [{"kind": "hold", "id": enforced.hold, "reason": "Complaint. (case C-7)",
             "until": None}] == found["protected_by"]
    decision = f"HELD: kept by legal hold {enforced.hold}; it has been due since {KEEP_UNTIL}"
    assert f"decision:       {decision}" in text
    assert "age:            submitted_at = 2024-01-10T10:00:00" in text


def test_a_retained_record_is_kept_until_its_retention_ends(enforced):
    """An invoice e-mail: kept by the 10-year retention, and acted on when that ends."""
    found = verdict(_explain(enforced, 3), RULE)
    ends = OLD.replace(year=OLD.year + 10, tzinfo=UTC).isoformat()

    assert ("retained", ends) == (found["decision"], found["act_at"])
    assert [("retention", "invoices-10-years", ends)] == [
        (p["kind"], p["id"], p["until"]) for p in found["protected_by"]]
    assert found["reason"].startswith("kept by minimum retention invoices-10-years")


def test_a_deleted_record_is_found_in_the_audit_log(enforced):
    """A record already deleted: not in the table, and the batch outcome that deleted it."""
    explained = _explain(enforced, 1)
    found = verdict(explained, RULE)

    assert (False, "absent") == (explained["exists"], found["decision"])
    assert [(RULE, "delete", "applied", "acted on (delete)")] == [
        (m["rule"], m["action"], m["status"], m["how"]) for m in explained["audit"]]
    assert explained["audit_records_scanned"] > 0


def test_explain_reads_the_same_on_every_backend(bench):
    """Library-level: a held and a due event, with their age values, on each database."""
    hold = bench.place(store="app", table="events", where=where(f"customer_id={CUSTOMER}"))
    explained = {key: explain(bench.engine(), store="app", table="events", key=(key,),
                              as_of=AS_OF, ledger=bench.ledger) for key in (1, 2)}
    (due,), (held,) = explained[1].verdicts, explained[2].verdicts

    assert ("act", datetime(2020, 1, 1), datetime(2021, 1, 1, tzinfo=ZoneInfo("UTC"))) == (  # noqa: DTZ001 - the column is naive
        due.decision, due.age, due.act_at)
    assert ("held", [hold.id], None) == (held.decision, [p.id for p in held.protected_by],
                                         held.act_at)
