"""Coverage: the personal-data columns that no rule and no erasure mapping covers.

"Personal data with no retention promise": for every table of the live stores, the columns
that hold personal data, from the data map (``personal:``, with its category) or because
their name or type looks personal (:func:`looks_personal`), and for each

- whether a **rule** promises when it goes: an enabled rule on the table that deletes or
  quarantines its rows, or anonymizes or pseudonymizes that column; or a rule on a parent
  table whose removals reach the rows through foreign keys (not ``set null``, which only
  clears the reference).  A rule with a ``where:`` covers only the rows it selects: *partly*.
- whether the **data map** says what erasing a subject does to it: the table is mapped and
  its erasure deletes the rows, keeps them under a stated exception, or rewrites that column.

A column is covered when both hold; each missing half is a gap of its own.  Tables whose
names begin with ``retentiond_`` (the bookkeeping retentiond keeps in the stores) are left
out.  Nothing here reads a value: only table and column names and types.

The name heuristics, case-insensitive, on the words of a name (split at ``_``, ``-``, spaces,
digits and camelCase humps), so ``domain_name`` or ``zipper`` match nothing:

=====================================  ========================================
words                                  category
=====================================  ========================================
email, mail (``e_mail``, ``emailAddr``)  contact
phone, mobile, telephone, tel, fax     contact
ip, ipv4, ipv6, ip address             network
name alone, or after first, last,      identity
full, given, family, middle, maiden,
sur, display, billing, shipping,
contact, customer, person, legal, real, user;
firstname, lastname, fullname,
surname, username
address, street, city, zip, zipcode,   location (``email address``: contact;
postcode, postal                       ``ip address``: network)
birth, birthday, birthdate, dob        identity
ssn, passport                          identity
iban, card                             financial
=====================================  ========================================

``username`` counts (it names a person's account); a bare ``name`` counts too (a table of
people usually calls the person's name so), while ``domain_name``, ``file_name`` and the
like do not.  Free text counts when the column is long text (no declared length, or longer
than 255) and a word of its name is body, message, notes, note, comment, comments or
description.  By type: PostgreSQL's ``INET``, ``CIDR`` and ``MACADDR`` are network data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from retentiond.policy.datamap import Category
from retentiond.stores.base import ColumnKind

if TYPE_CHECKING:
    from retentiond.policy.datamap import TableMap
    from retentiond.policy.model import PolicySet, Rule
    from retentiond.stores.base import ColumnInfo, TableSchema
    from retentiond.stores.registry import Stores

STATE_PREFIX = "retentiond_"
"""Tables retentiond keeps in the stores themselves; never the application's data."""
LONG_TEXT = 255
"""Longer declared text than this (or none declared) may be free text."""

_CONTACT = frozenset({"email", "mail", "phone", "mobile", "telephone", "tel", "fax"})
_NETWORK = frozenset({"ip", "ipv"})
_NAMES = frozenset({"firstname", "lastname", "fullname", "surname", "username"})
_NAME_BEFORE = frozenset({"first", "last", "full", "given", "family", "middle", "maiden",
                          "sur", "display", "billing", "shipping", "contact", "customer",
                          "person", "legal", "real", "user"})
_LOCATION = frozenset({"address", "street", "city", "zip", "zipcode", "postcode", "postal"})
_BIRTH = frozenset({"birth", "birthday", "birthdate", "dob"})
_IDS = frozenset({"ssn", "passport"})
_FINANCIAL = frozenset({"iban", "card"})
_FREE_TEXT = frozenset({"body", "message", "notes", "note", "comment", "comments",
                        "description"})
_NETWORK_TYPES = ("INET", "CIDR", "MACADDR")


@dataclass(frozen=True)
class Guess:
    """Why a column looks personal: its category and the word or type that matched."""

    category: Category
    because: str
    """``name: email``, ``type: INET``, ``free text: notes``."""


def words(name: str) -> tuple[str, ...]:
    """The lower-case words of a column name: ``billingName2`` -> ``billing, name``."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", name))
    return tuple(re.findall(r"[a-z]+", spaced.lower()))


def looks_personal(name: str, *, type_name: str = "", kind: ColumnKind | None = None,
                   length: int | None = None) -> Guess | None:
    """Whether a column's name or type looks like personal data, and why; None if not."""
    found = words(name)
    picked = _by_name(found)
    if picked is not None:
        return picked
    if type_name.upper().split("(")[0].strip() in _NETWORK_TYPES:
        return Guess(Category.NETWORK, f"type: {type_name.upper()}")
    long_text = kind is ColumnKind.TEXT and (length is None or length > LONG_TEXT)
    free = next((word for word in found if word in _FREE_TEXT), None)
    if long_text and free is not None:
        return Guess(Category.CONTENT, f"free text: {free}")
    return None


def _by_name(found: Sequence[str]) -> Guess | None:
    hit = next((w for w in found if w in _CONTACT), None)
    if hit is not None:
        return Guess(Category.CONTACT, f"name: {hit}")
    hit = next((w for w in found if w in _NETWORK), None)
    if hit is not None:
        return Guess(Category.NETWORK, f"name: {hit}")
    hit = next((w for w in found if w in _NAMES), None)
    if hit is not None:
        return Guess(Category.IDENTITY, f"name: {hit}")
    if found == ("name",) or any(
            word == "name" and index > 0 and found[index - 1] in _NAME_BEFORE
            for index, word in enumerate(found)):
        return Guess(Category.IDENTITY, "name: name")
    hit = next((w for w in found if w in _BIRTH or w in _IDS), None)
    if hit is not None:
        return Guess(Category.IDENTITY, f"name: {hit}")
    hit = next((w for w in found if w in _LOCATION), None)
    if hit is not None:
        return Guess(Category.LOCATION, f"name: {hit}")
    hit = next((w for w in found if w in _FINANCIAL), None)
    if hit is not None:
        return Guess(Category.FINANCIAL, f"name: {hit}")
    return None


class Promise(StrEnum):
    """Whether a rule promises when a column's values go."""

    YES = "yes"
    PARTLY = "partly"
    """Only the rows a rule's ``where:`` selects."""
    NO = "no"


@dataclass(frozen=True)
class PersonalColumn:
    """One personal column, where it was found, and what covers it."""

    column: str
    category: str
    source: str
    """``data map``, or the heuristic that matched (``name: email``, ``type: INET``)."""
    retention: Promise
    rules: tuple[str, ...]
    """The rules that promise something of it (``rule (where)`` when only partly)."""
    erasure: str | None
    """What erasure does (``delete``, ``anonymize``, ``keep: <exception>``), or None."""

    @property
    def gaps(self) -> tuple[str, ...]:
        """Each missing half in words; empty when covered."""
        found = []
        if self.retention is Promise.NO:
            found.append("no retention rule")
        elif self.retention is Promise.PARTLY:
            found.append("retention only partly (a rule's where: selects some rows)")
        if self.erasure is None:
            found.append("no erasure mapping")
        return tuple(found)

    @property
    def covered(self) -> bool:
        """Both a retention promise for every row and an erasure mapping."""
        return not self.gaps


@dataclass(frozen=True)
class TableCoverage:
    """A table's personal columns."""

    store: str
    table: str
    columns: tuple[PersonalColumn, ...]

    @property
    def gaps(self) -> tuple[PersonalColumn, ...]:
        """The columns not covered."""
        return tuple(c for c in self.columns if not c.covered)


@dataclass(frozen=True)
class Coverage:
    """Every table with personal columns, by store and table name."""

    tables: tuple[TableCoverage, ...]

    @property
    def gaps(self) -> tuple[TableCoverage, ...]:
        """The tables with at least one column not covered."""
        return tuple(t for t in self.tables if t.gaps)

    @property
    def gap_count(self) -> int:
        """How many columns are not covered."""
        return sum(len(t.gaps) for t in self.tables)


def coverage(policies: PolicySet, schemas: Mapping[str, Iterable[TableSchema]],
             reached: Mapping[tuple[str, str], Sequence[tuple[str, bool]]] | None = None,
             ) -> Coverage:
    """The personal columns of ``schemas`` (store -> its tables) and what covers each.

    ``reached``: (store, table) -> (rule id, whether that rule has a ``where:``) for each rule
    on a parent whose removals take these rows along its foreign keys.
    """
    reached = reached or {}
    tables = []
    for store in sorted(schemas):
        for schema in sorted(schemas[store], key=lambda s: s.name):
            if schema.name.lower().startswith(STATE_PREFIX):
                continue
            rules = [r for r in policies.rules
                     if r.enabled and (r.store, r.table) == (store, schema.name)]
            found = _table(policies, store, schema, rules, reached.get((store, schema.name), ()))
            if found.columns:
                tables.append(found)
    return Coverage(tuple(tables))


def _table(policies: PolicySet, store: str, schema: TableSchema, rules: Sequence[Rule],
           reached: Sequence[tuple[str, bool]]) -> TableCoverage:
    mapped = policies.data_map.table(store, schema.name)
    personal = dict(mapped.personal) if mapped is not None else {}
    columns = []
    names = [*schema.columns, *(c for c in personal if c not in schema.columns)]
    for name in names:
        info: ColumnInfo | None = schema.columns.get(name)
        if name in personal:
            category, source = str(personal[name]), "data map"
        else:
            guess = looks_personal(name, type_name=info.type_name if info else "",
                                   kind=info.kind if info else None,
                                   length=info.length if info else None)
            if guess is None:
                continue
            category, source = str(guess.category), guess.because
        promise, by = _promise(name, rules, reached)
        columns.append(PersonalColumn(name, category, source, promise, by,
                                      _erasure(mapped, name) if mapped is not None else None))
    return TableCoverage(store, schema.name, tuple(columns))


def _promise(column: str, rules: Sequence[Rule],
             reached: Sequence[tuple[str, bool]]) -> tuple[Promise, tuple[str, ...]]:
    whole: list[str] = []
    partly: list[str] = []
    for rule in rules:
        rewritten = getattr(rule.action, "columns", None)
        if rewritten is not None and column not in rewritten:
            continue  # an anonymize or pseudonymize rule that leaves this column as it is
        if rule.where is not None:
            partly.append(f"{rule.id} (where)")
        else:
            whole.append(rule.id)
    for rule_id, filtered in reached:
        if filtered:
            partly.append(f"{rule_id} (with its parent, where)")
        else:
            whole.append(f"{rule_id} (with its parent)")
    if whole:
        return Promise.YES, tuple(whole)
    if partly:
        return Promise.PARTLY, tuple(partly)
    return Promise.NO, ()


def _erasure(mapped: TableMap, column: str) -> str | None:
    erase = mapped.erase
    if column in erase.anonymized:
        return "anonymize"
    if column in erase.pseudonymized:
        return "pseudonymize"
    if erase.delete:
        return "delete"
    if erase.keep is not None:
        return f"keep: {erase.keep}"
    return None


def live_schemas(stores: Stores, names: Iterable[str]) -> dict[str, list[TableSchema]]:
    """Each named store's reflected tables (``retentiond_`` tables left out).

    Raises the store's :class:`~retentiond.errors.StoreError` when it cannot be read.
    """
    found: dict[str, list[TableSchema]] = {}
    for name in names:
        store = stores.get(name)
        tables = [store.schema(table) for table in store.table_names()
                  if not table.lower().startswith(STATE_PREFIX)]
        found[name] = [t for t in tables if t is not None]
    return found


def reached_by_rules(policies: PolicySet, goes_with: Mapping[tuple[str, str], Iterable[
        tuple[str, Iterable[str]]]]) -> dict[tuple[str, str], list[tuple[str, bool]]]:
    """From (store, table) -> (rule id, ways) to what :func:`coverage` takes as ``reached``.

    Only ways that take the rows along count: ``set null`` clears a reference and leaves
    the row, with its personal columns, where it is.
    """
    filtered = {rule.id: rule.where is not None for rule in policies.rules}
    return {place: [(rule, filtered.get(rule, False)) for rule, ways in found
                    if any(way != "set null" for way in ways)]
            for place, found in goes_with.items()}


def coverage_to_dict(found: Coverage) -> dict[str, Any]:
    """The coverage with stable keys for scripts: every personal column, covered or not."""
    return {"gaps": found.gap_count,
            "tables": [{"store": t.store, "table": t.table,
                        "columns": [{"column": c.column, "category": c.category,
                                     "source": c.source, "retention": str(c.retention),
                                     "rules": list(c.rules), "erasure": c.erasure,
                                     "covered": c.covered, "gaps": list(c.gaps)}
                                    for c in t.columns]}
                       for t in found.tables]}
