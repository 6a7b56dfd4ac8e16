"""``audit``: verify the ledger's chain, and summarize what it records."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console

from retentiond.cli.app import EXIT_FINDINGS, App, json_option, pass_app
from retentiond.cli.exporting import export
from retentiond.cli.publishing import report
from retentiond.cli.render import Listing
from retentiond.ledger.checkpoints import new_keypair
from retentiond.ledger.evidence import auditor_for, certificate_json
from retentiond.ledger.review import summarize
from retentiond.ledger.witness import DirectoryWitness, witnesses_for


@click.group()
def audit() -> None:
    """The audit ledger: what was done, and whether the record is intact."""


@audit.command()
@click.option("--witness", "witness_dirs", multiple=True,
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="A witness directory whose checkpoints the ledger must still hold "
                   "(repeatable; default: [audit] witness_dir).")
@json_option
@pass_app
def verify(app: App, witness_dirs: tuple[Path, ...], *, as_json: bool) -> None:
    """Check chain, sequence, checkpoints, witnesses, intents; name the first problem (exit 1)."""
    if witness_dirs and app.settings.audit.verify_key is None:
        raise click.UsageError("--witness needs [audit] verify_key: a witness's notes are "
                               "opened with it")
    witnesses = ([DirectoryWitness(path) for path in witness_dirs] if witness_dirs
                 else witnesses_for(app.settings.audit))
    with app.ledger() as ledger:
        auditor = auditor_for(app.settings.audit, ledger, witnesses=witnesses)
        result = ledger.verify(auditor)
        open_intents = ledger.open_intents()
    if as_json:
        click.echo(json.dumps({
            "ok": result.ok, "records": result.records, "head": result.head,
            "broken_seq": result.broken_seq, "reason": result.reason,
            "signatures_checked": auditor.public is not None,
            "witnesses": [str(witness.where) for witness in witnesses]
            if auditor.public is not None else [],
            "warnings": list(result.warnings),
            "open_intents": [i.entry.batch_id for i in open_intents]}, indent=2))
        if not result.ok:
            sys.exit(EXIT_FINDINGS)
        return
    if not result.ok:
        where = f"record {result.broken_seq}" if result.broken_seq else "the ledger"
        click.echo(f"BROKEN at {where}: {result.reason} ({result.records} records read)",
                   err=True)
        sys.exit(EXIT_FINDINGS)
    signed = "record signatures and checkpoints verified" if auditor.public is not None else (
        "no verify_key configured: signatures and checkpoints not checked")
    if auditor.public is not None and witnesses:
        seen = " and ".join(f"the witness in {witness.where}" for witness in witnesses)
        signed += f", including what {seen} saw"
    click.echo(f"ok: {result.records} records, chain head {result.head}; {signed}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    if open_intents:
        click.echo(f"{len(open_intents)} batch intent(s) have no outcome yet; the next run "
                   "settles them from the stores' batch markers")


@audit.command()
@click.option("--out", "directory", required=True,
              type=click.Path(path_type=Path, file_okay=False),
              help="Where to write signing.key (keep it secret) and verify.pub.")
def keygen(directory: Path) -> None:
    """Make an Ed25519 key pair for signing checkpoints."""
    private, public = new_keypair()
    directory.mkdir(parents=True, exist_ok=True)
    secret = directory / "signing.key"
    if secret.exists():
        raise click.UsageError(f"{secret} exists; move it away first")
    secret.touch(mode=0o600)
    secret.write_bytes(private)
    (directory / "verify.pub").write_bytes(public)
    click.echo(f"wrote {secret} (for [audit] signing_key, as a credential) and "
               f"{directory / 'verify.pub'} (for [audit] verify_key)")


@audit.command()
@click.option("--run", "run_id", required=True, help="The run whose certificate to print.")
@pass_app
def certificate(app: App, run_id: str) -> None:
    """Print the disposition certificate of a run (JSON)."""
    with app.ledger() as ledger:
        found = ledger.certificate(run_id)
    if found is None:
        raise click.UsageError(f"no certificate for run {run_id}")
    click.echo(certificate_json(found))


@audit.command()
@json_option
@pass_app
def summary(app: App, *, as_json: bool) -> None:
    """Per rule: records acted on, reached through foreign keys, held back, blocked."""
    with app.ledger() as ledger:
        rows = summarize(ledger)
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
        return
    counts = ("acted on", "reached by FK", "held back", "retained", "blocked", "runs",
              "failed", "brake stops")
    listing = Listing("What the audit ledger records", ("rule", "action", *counts),
                      numbers=frozenset(counts))
    for row in rows:
        listing.add(row.rule, row.action, f"{row.acted:,}", f"{row.reached:,}",
                    f"{row.held:,}", f"{row.retained:,}", f"{row.blocked:,}", f"{row.runs:,}",
                    f"{row.failed_runs:,}", f"{row.brake_stops:,}")
    Console().print(listing, crop=False)


audit.add_command(report)
audit.add_command(export)
