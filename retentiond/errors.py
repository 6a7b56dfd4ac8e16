"""The whole exception tree of retentiond.

Every error a user can cause, or a store can throw at us, is one of these::

    RetentionError
    +- ConfigError          settings file or environment is wrong (file, line)
    +- PolicyError          one or more problems in the policy files (problems: file, line, subject)
    +- StoreError           a data store refused or failed (store)
    |  +- StoreUnavailable  transient: connection refused, timeout; worth a retry
    |  +- SchemaChanged     the live schema no longer matches what was validated
    +- ActionError          an action could not be applied to a batch
    +- LimitExceeded        a safety brake: the rule would act on more than it may
    +- AuditError           the audit ledger could not be written; the action is not done
    +- WitnessError         a witness did not keep a checkpoint (the ledger has it) or is unreadable
    +- LeaseError           a rule's lease could not be taken (not "busy": broken); nothing ran
    +- UnknownBatch         no quarantined batch has this id, or several start with it

Messages are composed in ``__init__`` from attributes that stay on the instance,
so the CLI, the log and the tests can all read them (``err.problems``,
``err.store``, ``err.selected``).  Only the CLI turns them into exit codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\([^()]*=[^()]*\)")


def redact(text: str) -> str:
    """``text`` with quoted strings and ``(key)=(value)`` details masked, for logs and the audit.

    Database drivers quote the offending value in some messages ("Duplicate entry 'x'");
    masking every quoted string keeps such a value out of anything that is kept.
    """
    return _QUOTED.sub("'…'", text)


class RetentionError(Exception):
    """Base of every error retentiond raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One finding of validation: where it is, what is wrong, how to fix it."""

    file: Path | None
    line: int | None
    subject: str | None
    what: str
    fix: str

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        subject = f"{self.subject}: " if self.subject else ""
        return f"{where}{subject}{self.what}; {self.fix}"


class ConfigError(RetentionError):
    """The settings (config file or ``RETENTIOND_*`` environment) are invalid."""

    def __init__(
        self, what: str, fix: str, *, file: Path | None = None, line: int | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.what = what
        self.fix = fix
        super().__init__(str(Problem(file, line, None, what, fix)))


class PolicyError(RetentionError):
    """The policy set is invalid; ``problems`` lists every finding, not just the first."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        if not problems:
            raise ValueError("PolicyError needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        self.file = first.file
        self.line = first.line
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(f"{first}{more}")


class StoreError(RetentionError):
    """A data store failed; the message never carries row values or passwords.

    ``detail`` keeps the driver's own words for a person debugging at a terminal; some
    drivers quote row values there ("Duplicate entry 'x'"), so it is never logged or audited.
    """

    def __init__(
        self, store: str, what: str, fix: str = "check the store and try again", *,
        detail: str | None = None,
    ) -> None:
        self.store = store
        self.what = what
        self.fix = fix
        self.detail = detail
        super().__init__(f"store {store!r}: {what}; {fix}")

    @property
    def public(self) -> str:
        """The message as it may be logged and audited (it is ``str(self)``)."""
        return str(self)


class StoreUnavailable(StoreError):  # noqa: N818 - the name says what the operator needs to know
    """The store could not be reached (connection refused, timeout, authentication)."""


class SchemaChanged(StoreError):  # noqa: N818
    """The table no longer matches what the rule was validated against."""


class UnknownBatch(RetentionError):  # noqa: N818 - the name says what the operator needs to know
    """No quarantined batch has this id (or starts with it), or several start with it.

    ``matches``: the batches a prefix matches (several: it is ambiguous); ``stores``: the
    stores looked in.
    """

    def __init__(self, batch: str, *, matches: tuple[str, ...] = (),
                 stores: tuple[str, ...] = (), shortest: int = 1) -> None:
        self.batch = batch
        self.matches = matches
        self.stores = stores
        if len(matches) > 1:
            message = (f"batch {batch!r} is ambiguous: {len(matches)} quarantined batches start "
                       f"with it ({', '.join(matches)}); give more of the id")
        elif matches:
            message = (f"batch {batch!r} is too short to name a batch ({matches[0]} starts "
                       f"with it); give at least {shortest} characters of the id")
        else:
            looked = f"in any store ({', '.join(stores)})" if stores else "(no store is configured)"
            message = (f"no quarantined batch {batch!r} {looked}; list them with "
                       "'retentiond quarantine list'")
        super().__init__(message)


class ActionError(RetentionError):
    """An action could not be applied to a batch: the batch is rolled back and the run fails.

    ``what`` names types and columns, never a row's value: the message is logged and recorded.
    """

    def __init__(self, rule: str, table: str, what: str, fix: str, *,
                 column: str | None = None) -> None:
        self.rule = rule
        self.table = table
        self.column = column
        self.what = what
        self.fix = fix
        where = f"column {column!r} of {table!r}" if column is not None else f"table {table!r}"
        super().__init__(f"rule {rule!r}, {where}: {what}; {fix}")


class LimitExceeded(RetentionError):  # noqa: N818
    """A safety brake stopped a rule before it acted."""

    def __init__(
        self, rule: str, limit: str, allowed: float, selected: int, population: int, *,
        table: str | None = None,
    ) -> None:
        self.rule = rule
        self.limit = limit
        self.allowed = allowed
        self.selected = selected
        self.population = population
        self.table = table
        """None: the rule's own table; else the table whose reached rows trip the brake."""
        what = (f"would act on {selected} of {population} rows" if table is None else
                f"would change {selected} of {population} rows of {table} through foreign keys")
        super().__init__(
            f"rule {rule!r}: {what}, "
            f"over {limit}={allowed:g}; "
            "nothing was done. Check the rule with 'retentiond plan', raise the limit in the rule, "
            "or pass --allow-exceed once",
        )


class AuditError(RetentionError):
    """The audit ledger could not be written or read; no action is taken without it."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"audit ledger: {what}")


class WitnessError(RetentionError):
    """A witness did not keep a checkpoint, or cannot be read; the ledger's record stands."""

    def __init__(self, witness: str, what: str) -> None:
        self.witness = witness
        self.what = what
        super().__init__(f"witness {witness}: {what}")


class LeaseError(RetentionError):
    """A rule's lease could not be taken at all (as opposed to: another run holds it).

    Nothing ran; the run is recorded as failed all the same, so a rule that stops being
    enforced says so in the ledger, ``status`` and the report.
    """

    def __init__(self, rule: str, what: str, fix: str) -> None:
        self.rule = rule
        self.what = what
        self.fix = fix
        super().__init__(f"cannot take the lease of rule {rule!r}: {what}; {fix}")

