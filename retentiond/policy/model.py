"""The policy language: rules, legal holds and minimum retentions, as frozen, typed models.

A policy file holds up to three lists::

    rules:    what to do with records of a table once they are older than a period
    holds:    records no rule may touch (litigation, complaints), until released or expired
    retain:   records no rule may touch before a minimum age (tax law, recordkeeping)

and the data map (``subjects:`` and ``data_map:``, :mod:`retentiond.policy.datamap`).

Holds beat every rule and add up; of several minimum retentions the longest wins, because
each one is a guard of its own.  Where a record's standing is in doubt it is kept.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from retentiond.actions import AnyActionOptions
from retentiond.policy.cron import crontab
from retentiond.policy.datamap import DataMap, KindName, SubjectKind, TableMap, described
from retentiond.policy.filters import Filter, Identifier, TableName
from retentiond.policy.periods import PeriodField, zone
from retentiond.policy.strict import StrictModel

_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,79}$")


def _id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r} is not an id; use lowercase letters, digits, '.', '_' and '-' "
            "(at most 80 characters)",
        )
    return value


def _timezone(value: str) -> str:
    zone(value)
    return value


def _cron(value: str) -> str:
    try:
        crontab(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a cron expression ({exc}); write five fields, "
                         "e.g. '0 3 * * *' for 03:00 every day") from None
    return value


EntryId = Annotated[str, AfterValidator(_id)]
StoreName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
Timezone = Annotated[str, AfterValidator(_timezone)]
Cron = Annotated[str, AfterValidator(_cron)]


class Hop(StrictModel):
    """One foreign key on the way to related rows.

    ``table``'s columns ``via`` reference the rows one step nearer the rule's table.
    """

    table: TableName
    via: Annotated[list[Identifier], Field(min_length=1)]


class Related(Hop):
    """``{table: invoices, via: [customer_id], column: issued_at, take: newest}``.

    The age of a record is the newest (or oldest) ``column`` of the rows of ``table`` that
    reference it through the foreign key ``via``; ``through`` lists the tables in between,
    nearest first, for a longer path (``invoice_lines -> invoices -> customers``).  A NULL
    (or, on SQLite, a value that is not an ISO date) among those rows puts the age in doubt,
    whichever end is taken, and doubt keeps the record.
    """

    column: Identifier
    take: Literal["newest", "oldest"] = "newest"
    through: list[Hop] = Field(default_factory=list, exclude_if=lambda v: not v)

    @property
    def path(self) -> tuple[Hop, ...]:
        """Every hop from the rule's table outwards, the related table last."""
        return (*self.through, Hop(table=self.table, via=self.via))


class UseOwn(StrictModel):
    """``when_none: {use: created_at}``: with no related rows, the table's own date column."""

    use: Identifier


class Age(StrictModel):
    """``{column: submitted_at, older_than: 12 months, timezone: UTC}``.

    ``timezone`` is the clock of the calendar arithmetic and the zone in which naive
    date/time values of the column are read.  Instead of a ``column`` of its own, a record's
    age may come from ``related`` rows (see :class:`Related`); ``when_none`` says what a
    record with no related rows at all is: ``keep`` (no age: never due, the default) or
    ``act`` (due, as "an account with no login" is), or ``{use: column}``, a date column of
    the table's own (a customer who never bought anything is as old as its sign-up).
    """

    column: Identifier | None = None
    related: Related | None = Field(default=None, exclude_if=lambda v: v is None)
    older_than: PeriodField
    timezone: Timezone = "UTC"
    when_none: Literal["keep", "act"] | UseOwn = Field(default="keep",
                                                       exclude_if=lambda v: v == "keep")

    @model_validator(mode="after")
    def _one(self) -> Age:
        if self.column is None and self.related is None:
            raise ValueError("'column' is missing: an age is a date column of the table, or "
                             "the newest or oldest date of 'related' rows; add 'column:' "
                             "(or 'related:')")
        if self.column is not None and self.related is not None:
            raise ValueError("both 'column' and 'related' are given; keep the one the age is "
                             "measured on")
        if self.related is None and self.when_none != "keep":
            raise ValueError("'when_none' is for ages from 'related' rows; remove it, or "
                             "measure the age on 'related' rows")
        return self

    @property
    def described(self) -> str:
        """The age in words: ``submitted_at``, or ``newest invoices.issued_at``."""
        if self.related is None:
            return str(self.column)
        return f"{self.related.take} {self.related.table}.{self.related.column}"


class Schedule(StrictModel):
    """When the rule runs: a five-field ``cron`` expression or ``every`` period."""

    cron: Cron | None = None
    every: PeriodField | None = None

    @model_validator(mode="after")
    def _one(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' or 'every'")
        if self.every is not None and (self.every.months or self.every.years):
            raise ValueError("'every' takes minutes, hours, days or weeks; use 'cron' for "
                             "monthly or yearly runs")
        return self


class Limits(StrictModel):
    """Safety brakes per run; unset ones take the defaults from settings, never 'off'."""

    max_rows: Annotated[int, Field(gt=0)] | None = None
    max_percent: Annotated[float, Field(gt=0, le=100)] | None = None


class Rule(StrictModel):
    """What to do with the records of one table once they are older than a period."""

    id: EntryId
    description: Annotated[str, Field(min_length=1)]
    """The promise in plain words, as the privacy policy or retention schedule states it."""
    store: StoreName
    table: TableName
    age: Age
    where: Filter | None = None
    subjects: dict[str, Identifier] = Field(default_factory=dict, exclude_if=lambda v: not v)
    """Data subjects the table's records belong to: subject kind -> the column holding the
    subject's id, e.g. ``{customer: customer_id}``.  A hold placed on a subject at run time
    (``retentiond hold add --subject customer=4711``) holds the rows whose column equals the
    id, in every table whose rules map that kind.  Left out of the rule's version when empty,
    so rules that map no subject keep their versions."""
    action: AnyActionOptions
    schedule: Schedule | None = None
    limits: Limits = Field(default_factory=Limits)
    batch_size: Annotated[int, Field(gt=0, le=100_000)] | None = None
    throttle: Annotated[float, Field(gt=0)] | None = None
    """At most this many rows per second, to spare a busy production database."""
    enabled: bool = True
    compact: Literal["vacuum", "rewrite"] | None = Field(default=None,
                                                         exclude_if=lambda v: v is None)
    """After a run that acted, clear the old values the database still keeps: ``vacuum``
    (PostgreSQL ``VACUUM``: dead tuples gone, their bytes stay until reused) or ``rewrite``
    (``VACUUM (FULL)``: the table copied into a new file, locked meanwhile); MariaDB runs
    ``OPTIMIZE TABLE`` and SQLite ``VACUUM`` for either.  Left out of the version when unset."""
    after: list[EntryId] = Field(default_factory=list, exclude_if=lambda v: not v)
    """Ids of rules this one runs after when both are due at once (see
    :mod:`retentiond.policy.order`); left out of the rule's version when empty."""

    @property
    def version(self) -> str:
        """A digest of everything the rule says; the audit log names the version acted under."""
        payload = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class Hold(StrictModel):
    """A legal hold: records in scope are never selected by any rule while it is active."""

    id: EntryId
    reason: Annotated[str, Field(min_length=1)]
    case: str | None = None
    store: StoreName
    table: TableName
    where: Filter | None = None
    """Narrows the hold (e.g. one customer's records); absent, the whole table is held."""
    expires: date | datetime | None = None

    def active(self, at: datetime) -> bool:
        """Whether the hold is in force at ``at``; an expiry date holds through that whole day."""
        if self.expires is None:
            return True
        if isinstance(self.expires, datetime):
            expires = self.expires if self.expires.tzinfo else self.expires.replace(
                tzinfo=at.tzinfo)
            return at < expires
        return at.date() <= self.expires


class Retention(StrictModel):
    """A minimum retention: records in scope may not be acted on before they are this old."""

    id: EntryId
    reason: Annotated[str, Field(min_length=1)]
    store: StoreName
    table: TableName
    column: Identifier
    """The date/time column the minimum is measured from."""
    period: PeriodField = Field(alias="for")
    timezone: Timezone = "UTC"
    where: Filter | None = None


class PolicyFile(StrictModel):
    """One YAML file: any of the three lists and the data map, at least one entry in all."""

    rules: list[Rule] = Field(default_factory=list)
    holds: list[Hold] = Field(default_factory=list)
    retain: list[Retention] = Field(default_factory=list)
    subjects: dict[KindName, Annotated[SubjectKind, BeforeValidator(described)]] = Field(
        default_factory=dict)
    """The kinds of data subject (:mod:`retentiond.policy.datamap`)."""
    data_map: list[TableMap] = Field(default_factory=list)
    """Where each kind's rows are, what is personal, what erasure does."""


@dataclass(frozen=True)
class Source:
    """Where an entry came from: its file, its first line, and the line of every nested key."""

    file: Path
    line: int
    lines: Mapping[tuple[str | int, ...], int] = field(default_factory=dict)

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The line of ``path`` inside the entry, or of its nearest ancestor that has one."""
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found is not None:
                return found
        return self.line


@dataclass(frozen=True)
class PolicySet:
    """Every rule, hold and minimum retention from a policy directory, validated in shape."""

    rules: tuple[Rule, ...]
    holds: tuple[Hold, ...]
    retentions: tuple[Retention, ...]
    sources: Mapping[str, Source]
    """Source of each entry, by id."""
    data_map: DataMap = field(default_factory=DataMap)
    """The subject kinds and the mapped tables (:mod:`retentiond.policy.datamap`)."""

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError when absent)."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    def holds_on(self, store: str, table: str, at: datetime) -> Iterator[Hold]:
        """Active holds declared on ``store.table`` at ``at``."""
        return (h for h in self.holds if h.store == store and h.table == table and h.active(at))

    def retentions_on(self, store: str, table: str) -> Iterator[Retention]:
        """Minimum retentions declared on ``store.table``."""
        return (r for r in self.retentions if r.store == store and r.table == table)

    @property
    def digest(self) -> str:
        """A digest of the whole set, for the audit record of a run."""
        entries: list[object] = [e.model_dump(mode="json", by_alias=True)
                                 for e in (*self.rules, *self.holds, *self.retentions)]
        if self.data_map:  # an empty map leaves the digests of older policy sets as they were
            entries.append(self.data_map.dumped())
        return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()[:16]
