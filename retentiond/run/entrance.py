"""The one entrance for running rules: what ``run --once`` and the daemon both do with a rule.

For each rule: take its lease (never two runs of one rule at once, on any replica), settle
what a crash left (open intents, from the stores' batch markers), run it in audited batches.
For each run: its certificate, then a signed checkpoint published to the witnesses.  The CLI
and the daemon differ only in what they do around it: which rules, when, how a stop is asked
for, and how a failure is reported (a line on stderr, or a log event and a retry).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from retentiond.clock import SYSTEM_CLOCK, Clock
from retentiond.errors import RetentionError, WitnessError
from retentiond.ledger.evidence import Signer, certify, write_checkpoint
from retentiond.ledger.witness import witnesses_for
from retentiond.run.enforce import Options, RuleReport, RuleRun, recover

if TYPE_CHECKING:
    from retentiond.ledger.chain import AuditLedger
    from retentiond.policy.model import Rule
    from retentiond.run.engine import Engine
    from retentiond.run.leases import Leases
    from retentiond.settings import Settings


@dataclass(frozen=True)
class Attempt:
    """What came of asking for one rule's run."""

    rule: Rule
    report: RuleReport | None = None
    """The run's report; None when it did not run (``busy`` or ``settled``)."""
    error: RetentionError | None = None
    """What ended the run early (recorded in its ``run.end``), or None."""
    busy: bool = False
    """Another replica holds the rule's lease right now."""
    settled: bool = False
    """Under the lease, the caller found nothing left to do (another replica ran it)."""


@dataclass(frozen=True)
class Enforcer:
    """Runs rules against the engine's stores and attests each run in the ledger.

    A run is as of the time ``clock`` tells when it is asked for, unless told otherwise.
    """

    engine: Engine
    ledger: AuditLedger
    leases: Leases
    settings: Settings
    signer: Signer | None
    clock: Clock = SYSTEM_CLOCK

    def run_rule(self, rule: Rule, *, run_id: str, options: Options,
                 as_of: datetime | None = None,
                 settled: Callable[[], bool] | None = None) -> Attempt:
        """Lease, recover, run; a RetentionError ends the run (recorded) and is returned.

        ``as_of`` (default: now) is the moment the rule's periods are counted back from.
        ``settled`` is asked once the lease is held: True means another replica already did
        what this run was for, and nothing is done.  Whatever ends the run, before it starts
        (a lease that cannot be taken, a state database away) or during it, is in its
        ``run.end``; anything that is not a RetentionError is a bug: recorded, then raised.
        """
        if as_of is None:
            as_of = self.clock.now()
        run = RuleRun(self.engine, self.ledger, rule, as_of=as_of, run_id=run_id,
                      options=options)
        try:
            with self.leases.hold(rule.id) as taken:
                if not taken:
                    return Attempt(rule, busy=True)
                if settled is not None and settled():
                    return Attempt(rule, settled=True)
                recover(self.engine, self.ledger, rule=rule.id)
                run()
                return Attempt(rule, run.report)
        except RetentionError as exc:
            # Nothing may pass in silence: a rule whose lease is broken, or whose ledger is
            # away, would otherwise stop being enforced with no trace but a log line.
            if not run.ended:
                run.unstarted(exc)
            return Attempt(rule, run.report, error=exc)
        except Exception as exc:
            if not run.ended:
                run.unstarted(exc)
            raise

    def attest(self, run_id: str, attempts: Sequence[Attempt], *, started: datetime,
               ended: datetime | None = None) -> list[str]:
        """The run's certificate and a signed checkpoint (when a key is configured).

        The certificate's window is ``started`` to ``ended`` (default: now).  A witness that
        did not keep the checkpoint is returned as a problem: the checkpoint is in the ledger
        all the same.  Any other failure to write is raised (AuditError).
        """
        reports = [(a.rule, a.report) for a in attempts if a.report is not None]
        certify(self.ledger, self.signer, run_id=run_id, settings=self.settings,
                reports=reports, started=started,
                ended=self.clock.now() if ended is None else ended)
        if self.signer is None:
            return []
        audit = self.settings.audit
        try:
            write_checkpoint(self.ledger, self.signer, file=audit.checkpoint_file,
                             witnesses=witnesses_for(audit))
        except WitnessError as exc:
            return [f"{exc} (the checkpoint is in the ledger)"]
        return []
