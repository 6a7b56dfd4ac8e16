"""Legal holds as counsel places them: ``hold add``, ``hold list``, ``hold release``, audited.

The audit ledger records who placed or released a hold, when and why, and never the data
subject's value or a filter's values.
"""

from __future__ import annotations

import re

import pytest
from evidence_kit import SQLITE_ONLY, placed_id, where

from retentiond.errors import AuditError, PolicyError
from retentiond.holds.placing import LegalHolds
from retentiond.holds.table import list_holds
from retentiond.ledger.chain import Kind, canonical
from retentiond.ledger.state import audit_log, holds


def test_add_list_release_round_trip_is_audited_without_personal_values(site):
    """Placing and releasing are in the ledger (who, when, why, case), the value 4711 is not."""
    where = placed_id(site.ok("hold", "add", "--store", "app", "--table", "emails",
                              "--where", "customer_id=4711", "--reason", "Complaint received.",
                              "--case", "CASE-17", "--by", "counsel"))
    subject = placed_id(site.ok("hold", "add", "--subject", "customer=4711", "--reason",
                                "Litigation.", "--case", "CASE-18", "--by", "counsel"))
    released = site.ok("hold", "release", where, "--reason", "Complaint settled.", "--by", "dpo")
    listed = site.json("hold", "list", "--all")

    assert released.startswith(f"released hold {where} (app.emails where customer_id=4711)")
    assert [(where, "released", "customer_id=4711", None, "dpo", "Complaint settled."),
            (subject, "active", None, {"kind": "customer", "value": "4711"}, None, None)] == [
        (h["id"], h["status"], h["where"], h["subject"], h["released_by"], h["release_reason"])
        for h in listed]
    records = site.records()
    holds = [r for r in records if r.entry.kind in {Kind.HOLD_PLACED, Kind.HOLD_RELEASED}]
    assert [(Kind.HOLD_PLACED, where), (Kind.HOLD_PLACED, subject),
            (Kind.HOLD_RELEASED, where)] == [(r.entry.kind, r.entry.body["hold"]) for r in holds]
    placed, by_subject, ended = (r.entry.body for r in holds)
    assert {"by": "counsel", "reason": "Complaint received.", "case": "CASE-17",
            "filter_columns": ["customer_id"]} == {
        k: placed[k] for k in ("by", "reason", "case", "filter_columns")}
    assert ("customer", 64) == (by_subject["subject"], len(by_subject["subject_digest"]))
    assert {"by": "dpo", "reason": "Complaint settled.", "case": "CASE-17"} == {
        k: ended[k] for k in ("by", "reason", "case")}
    assert all(r.at and r.entry.body.get("placed_at", r.entry.body.get("released_at"))
               for r in holds)
    assert [] == [r.seq for r in records if "4711" in canonical(r.fields())]
    with site.ledger() as ledger:
        assert ledger.verify().ok


def test_bad_holds_are_refused_in_one_line_each_and_nothing_is_placed(site):
    """A wrong column, value or unmapped subject, an unknown id: exit 2, nothing changes."""
    refused = [
        site.cli("hold", "add", "--store", "app", "--table", "emails", "--where", "nope=1",
                 "--reason", "x"),
        site.cli("hold", "add", "--store", "app", "--table", "emails", "--where",
                 "customer_id=abc", "--where", "kind~x", "--reason", "x"),
        site.cli("hold", "add", "--subject", "employee=12", "--store", "crm", "--reason", "x"),
        site.cli("hold", "release", "H-00000000", "--reason", "x"),
    ]

    assert [2] * 4 == [r.returncode for r in refused]
    assert [
        ["error: hold: column 'nope' does not exist in table 'emails'; use one of: customer_id, "
         "id, kind, submitted_at", "nothing was placed"],
        ["error: Invalid value for --where: 'kind~x' is not a condition; write column=value "
         "(or !=, <, <=, >, >=), e.g. customer_id=4711; see 'retentiond --help'"],
        ["error: hold: store 'crm' is not configured (configured: app); name a store of the "
         "config file",
         "error: hold: neither the data map nor a rule maps the subject 'employee' on crm, so "
         "the hold would hold nothing; map the kind in the data map ('subject: {employee: "
         "<column>}' of the tables that hold such records), or hold with --store, --table and "
         "--where", "nothing was placed"],
        ["error: H-00000000: no hold placed at run time has this id; list them with "
         "'retentiond hold list --all' (holds in policy files are released by editing the "
         "files)", "nothing was released"],
    ] == [r.stderr.splitlines() for r in refused]
    assert [] == [r for r in site.records() if r.entry.kind is Kind.HOLD_PLACED]


@SQLITE_ONLY
def test_a_value_that_does_not_fit_its_column_is_refused(bench):
    """customer_id=abc names no integer: refused before anything is stored."""
    with pytest.raises(PolicyError) as refused:
        bench.place(store="app", table="events", where=where("customer_id=abc"))

    (problem,) = refused.value.problems
    assert re.fullmatch(r"hold: 'abc' is not a value of column 'customer_id' \(INTEGER.*\); "
                        r"compare with a value of the column's type", str(problem))
    assert [] == list_holds(bench.state)


@SQLITE_ONLY
def test_a_hold_is_released_once(bench):
    """Releasing a released hold is refused, and the ledger records one release."""
    hold = bench.place(store="app", table="events")
    holds = LegalHolds(bench.state, bench.ledger)
    holds.release(hold.id, reason="Case closed.", by="dpo")

    with pytest.raises(PolicyError, match=f"{hold.id}: was released on .* by dpo; nothing to do"):
        holds.release(hold.id.lower(), reason="Case closed.", by="dpo")
    assert [Kind.HOLD_PLACED, Kind.HOLD_RELEASED] == [r.entry.kind for r in bench.ledger.records()]


def refuse_inserts(bench, table):
    """Make the state database refuse every new row of ``table`` (the ledger or the holds)."""
    with bench.state.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TRIGGER refuse BEFORE INSERT ON {table} "
                             "BEGIN SELECT RAISE(ABORT, 'refused'); END")


@SQLITE_ONLY
@pytest.mark.parametrize(("refusing", "error"), [
    (audit_log.name, "cannot write the ledger"),
    (holds.name, "cannot store the hold: IntegrityError")], ids=["ledger", "holds"])
def test_a_hold_is_placed_with_its_record_or_not_at_all(bench, refusing, error):
    """The hold's row and its record commit together: either refused, neither is written."""
    refuse_inserts(bench, refusing)

    with pytest.raises(AuditError, match=error):
        bench.place(store="app", table="events")

    assert ([], []) == (list_holds(bench.state), list(bench.ledger.records()))


@SQLITE_ONLY
def test_a_release_the_ledger_cannot_record_leaves_the_hold_in_force(bench):
    """A release the ledger cannot record does not happen: the hold keeps protecting."""
    hold = bench.place(store="app", table="events")
    refuse_inserts(bench, audit_log.name)

    with pytest.raises(AuditError, match="cannot write the ledger"):
        LegalHolds(bench.state, bench.ledger).release(hold.id, reason="Case closed.", by="dpo")

    assert [(hold.id, None)] == [(h.id, h.released_at) for h in list_holds(bench.state)]
    assert [Kind.HOLD_PLACED] == [r.entry.kind for r in bench.ledger.records()]
