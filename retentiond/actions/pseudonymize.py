"""``pseudonymize``: replace values by keyed, deterministic pseudonyms so joins still work.

The pseudonym is HMAC-SHA256 under a key derived per *domain* (a named join space such as
``customer-email``) from a secret held outside the policy, in lowercase base32 cut to fit the
column.  The same value in the same domain gives the same pseudonym in every table and store;
different domains never join.  The key id goes into the audit record so keys can be rotated.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from retentiond.actions.base import (
    Action,
    ActionOptions,
    AuditBody,
    Batch,
    Finding,
    Verbs,
    changed_rows,
    column_or_finding,
)
from retentiond.errors import ConfigError
from retentiond.policy.filters import Identifier
from retentiond.policy.strict import StrictModel
from retentiond.stores.base import Capability, NotPseudonym, PendingCheck, Row, TableSchema, Writer
from retentiond.stores.values import is_text, text_fits

FULL_LENGTH = 52
"""Characters of an unpadded base32 SHA-256 digest."""
MIN_JOINABLE = 16
"""Shortest pseudonym on a unique or joined column (80 bits: collisions stay negligible)."""
MIN_LENGTH = 8

_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _domain(value: str) -> str:
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name; use lowercase letters, digits, . _ -")
    return value


class PseudonymColumn(StrictModel):
    """One column: its join domain and, optionally, the pseudonym's length."""

    domain: Annotated[str, AfterValidator(_domain)]
    length: Annotated[int, Field(ge=MIN_LENGTH, le=FULL_LENGTH)] | None = None


class PseudonymizeOptions(ActionOptions):
    """``{type: pseudonymize, columns: {requester_email: {domain: customer-email}}}``."""

    type: Literal["pseudonymize"] = "pseudonymize"
    columns: Annotated[dict[Identifier, PseudonymColumn], Field(min_length=1)]


class PseudonymizeAction(Action[PseudonymizeOptions]):
    """Overwrite columns with keyed pseudonyms, stable across tables, stores and runs."""

    name: ClassVar[str] = "pseudonymize"
    options_model = PseudonymizeOptions
    severity: ClassVar[int] = 1
    needs: ClassVar[frozenset[Capability]] = frozenset({Capability.REWRITE, Capability.REMEMBER})
    rechecks: ClassVar[bool] = False
    removes_rows: ClassVar[bool] = False
    moves_rows: ClassVar[bool] = False
    needs_pseudonym_key: ClassVar[bool] = True
    verbs: ClassVar[Verbs] = Verbs("pseudonymize", "pseudonymized", "pseudonymizing")
    outcome: ClassVar[str] = "Pseudonymized"
    colour: ClassVar[str] = "#1b7837"

    def check(self, table: TableSchema) -> list[Finding]:
        """Text columns only, long enough for a pseudonym that will not collide."""
        findings: list[Finding] = []
        joined = {column for fk in table.references for column in fk.columns}
        for column, spec in self.options.columns.items():
            path: tuple[str | int, ...] = ("action", "columns", column)
            info = column_or_finding(table, column, path)
            if isinstance(info, Finding):
                findings.append(info)
                continue
            if not is_text(info):
                findings.append(Finding(path, f"pseudonyms are text; {column!r} is "
                                              f"{info.type_name}", "pseudonymize text columns"))
                continue
            needed = MIN_JOINABLE if (info.unique or column in joined) else MIN_LENGTH
            wanted = spec.length or needed
            if wanted < needed:
                findings.append(Finding(path, f"{column!r} is unique or joined; a pseudonym of "
                                              f"{wanted} characters may collide",
                                        f"use length {needed} or more"))
            elif not text_fits(info, wanted):
                findings.append(Finding(path, f"column {column!r} holds {info.length} "
                                              f"characters, fewer than the {wanted} needed",
                                        "widen the column or choose a shorter length"))
        return findings

    def describe(self) -> str:
        """Each column with its domain."""
        parts = [f"{column} in domain {spec.domain!r}" for column, spec in
                 self.options.columns.items()]
        return "replace with keyed pseudonyms: " + "; ".join(parts)

    def touched_columns(self) -> tuple[str, ...]:
        """The pseudonymized columns."""
        return tuple(self.options.columns)

    def lengths(self, table: TableSchema) -> dict[str, int]:
        """The pseudonym length of each column: as configured, else as much as fits (<= 52)."""
        return {column: spec.length or min(FULL_LENGTH, table.columns[column].length
                                           or FULL_LENGTH)
                for column, spec in self.options.columns.items()}

    def pending(self, table: TableSchema, rule: str) -> tuple[PendingCheck, ...]:
        """A row is pending unless this rule recorded it and its values look pseudonymized."""
        return tuple(NotPseudonym(column, length, rule)
                     for column, length in self.lengths(table).items())

    def apply(self, writer: Writer, batch: Batch) -> AuditBody:
        """Replace every value with its keyed pseudonym; the key id goes to the audit log."""
        if batch.keyring is None:
            raise ConfigError("a pseudonymize rule runs but no pseudonym key is configured",
                              "set [pseudonymize] key_id and its key")
        keyring = batch.keyring
        lengths = self.lengths(batch.table)
        columns = list(self.options.columns)
        domains = [self.options.columns[c].domain for c in columns]
        sizes = [lengths[c] for c in columns]
        makers = [keyring.pseudonymizer(d, n) for d, n in zip(domains, sizes, strict=True)]

        def pseudonymized() -> list[Row]:
            if len(makers) == 1:  # the usual case, without a tuple and a call per value
                make = makers[0]
                return [(key, (new,)) for key, (value,) in batch.rows
                        if value is not None and (new := make(value)) != value]
            return changed_rows(batch.rows, lambda _key, values: tuple(
                None if value is None else make(value)
                for make, value in zip(makers, values, strict=True)))

        changed = writer.record_done(batch.table.name, batch.rule, batch.keys,
                                     meanwhile=pseudonymized)
        writer.rewrite(batch.table.name, columns, changed)
        return {"keys": [k for k, _ in changed], "count": len(changed),
                "key_id": keyring.key_id,
                "columns": {c: {"domain": d, "length": n}
                            for c, d, n in zip(columns, domains, sizes, strict=True)}}
