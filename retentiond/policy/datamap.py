"""The data map: the kinds of data subject, where their rows are, and what erasing them does.

Declared once, in any policy file::

    subjects:
      customer: {description: A customer of the shop}
    data_map:
      - store: app
        table: invoices
        subject: {customer: customer_id}          # the column holding the subject's id
        personal: {billing_name: identity, billing_address: contact}
        erase:
          keep: "business record: credit transactions, tax law (7 years)"
          anonymize: {billing_name: nullify}
      - store: app
        table: invoice_lines
        subject: {customer: [invoice_id, customer_id]}  # a path of foreign keys
        erase: delete

A subject's rows in a table are found through a column, a path of foreign keys (each column
but the last a foreign key of the table reached so far, the last the subject's id there), or
several such ways (a list of them: ``[[invoice_id, customer_id], [order_id, customer_id]]``).
``erase`` says what erasing the subject does to its rows: ``delete``; ``anonymize`` and
``pseudonymize`` with the strategies of those actions; or ``keep`` with the exception that
allows keeping them, which may still anonymize the personal columns the exception does not
need.  A subject hold (``retentiond hold add --subject customer=4711``) reaches every table
the data map maps the kind to, through the paths too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from retentiond.actions import AnonymizeOptions, PseudonymizeOptions
from retentiond.errors import Problem
from retentiond.policy.filters import Identifier, TableName
from retentiond.policy.strict import StrictModel

if TYPE_CHECKING:
    from retentiond.policy.model import Rule, Source

KindName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")]
"""A subject kind, as ``hold add --subject kind=value`` writes it."""
StoreName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
"""A store's name (as in a rule)."""
MAX_STEPS = 8
"""Most columns in one path: deeper chains are a schema to look at, not to map blindly."""


class Category(StrEnum):
    """What kind of personal data a column holds."""

    CONTACT = "contact"
    IDENTITY = "identity"
    CONTENT = "content"
    FINANCIAL = "financial"
    NETWORK = "network"
    LOCATION = "location"
    HEALTH = "health"
    OTHER = "other"


def described(value: Any) -> Any:  # noqa: ANN401 - raw YAML
    """``customer: A customer`` is short for ``customer: {description: A customer}``."""
    return {"description": value} if isinstance(value, str) else value


class SubjectKind(StrictModel):
    """A kind of data subject: ``customer: {description: A customer of the shop}``."""

    description: Annotated[str, Field(min_length=1)]


Way = tuple[Identifier, ...]
"""One way to a subject: a column, or a path of foreign-key columns ending at the subject's id."""


def _ways(value: Any) -> Any:  # noqa: ANN401 - raw YAML
    """A column, a path (a list of columns) or several (a list of columns and paths)."""
    if isinstance(value, str):
        return [[value]]
    if isinstance(value, list) and any(isinstance(item, list) for item in value):
        return [[item] if isinstance(item, str) else item for item in value]
    if isinstance(value, list):
        return [value]
    return value


def _paths(value: tuple[Way, ...]) -> tuple[Way, ...]:
    for way in value:
        if not way:
            raise ValueError("a path names at least one column")
        if len(way) > MAX_STEPS:
            raise ValueError(f"a path of {len(way)} columns is longer than {MAX_STEPS}; "
                             "map the table through a nearer one")
    if len(set(value)) != len(value):
        raise ValueError("the same way is given twice; remove one")
    return value


Ways = Annotated[tuple[Way, ...], BeforeValidator(_ways), AfterValidator(_paths),
                 Field(min_length=1)]


def _columns(value: Any) -> Any:  # noqa: ANN401 - raw YAML
    """``{email: nullify}`` is short for ``{email: {strategy: nullify}}``."""
    if isinstance(value, dict) and "columns" not in value:
        return {"columns": {column: {"strategy": spec} if isinstance(spec, str) else spec
                            for column, spec in value.items()}}
    return value


def _domains(value: Any) -> Any:  # noqa: ANN401 - raw YAML
    """``{email: customer-email}`` is short for ``{email: {domain: customer-email}}``."""
    if isinstance(value, dict) and "columns" not in value:
        return {"columns": {column: {"domain": spec} if isinstance(spec, str) else spec
                            for column, spec in value.items()}}
    return value


def _erase(value: Any) -> Any:  # noqa: ANN401 - raw YAML
    if value == "delete":
        return {"delete": True}
    if isinstance(value, str):  # pydantic reports ValueErrors, not TypeErrors
        raise ValueError(f"{value!r} is not an erasure; write 'delete', or a mapping with "  # noqa: TRY004
                         "'anonymize', 'pseudonymize' or 'keep' (the exception)")
    return value


def _stated(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise ValueError("the exception is empty; state why the rows are kept "
                         "(e.g. 'business record: tax law, 10 years')")
    return value


class Erase(StrictModel):
    """What erasing a subject does to its rows of one table."""

    delete: bool = False
    keep: Annotated[str | None, AfterValidator(_stated)] = None
    """The exception under which the rows are kept (a business record, a legal duty)."""
    anonymize: Annotated[AnonymizeOptions | None, BeforeValidator(_columns)] = None
    pseudonymize: Annotated[PseudonymizeOptions | None, BeforeValidator(_domains)] = None

    @model_validator(mode="after")
    def _one_effect(self) -> Erase:
        rewrites = [o for o in (self.anonymize, self.pseudonymize) if o is not None]
        if self.delete and (rewrites or self.keep is not None):
            raise ValueError("'delete' removes the rows, so 'keep', 'anonymize' and "
                             "'pseudonymize' have nothing to act on; give 'delete' alone, or "
                             "keep or rewrite the rows instead")
        if not self.delete and not rewrites and self.keep is None:
            raise ValueError("say what erasing does: 'delete', 'anonymize', 'pseudonymize', "
                             "or 'keep' with the exception that allows it")
        both = set(self.anonymized) & set(self.pseudonymized)
        if both:
            raise ValueError(f"column(s) {', '.join(sorted(both))} both anonymized and "
                             "pseudonymized; choose one")
        return self

    @property
    def effect(self) -> str:
        """``delete``, ``keep``, ``anonymize`` or ``pseudonymize`` (a rewrite without keep)."""
        if self.delete:
            return "delete"
        if self.keep is not None:
            return "keep"
        return "anonymize" if self.anonymize is not None else "pseudonymize"

    @property
    def anonymized(self) -> tuple[str, ...]:
        """The columns erasure anonymizes."""
        return tuple(self.anonymize.columns) if self.anonymize is not None else ()

    @property
    def pseudonymized(self) -> tuple[str, ...]:
        """The columns erasure pseudonymizes."""
        return tuple(self.pseudonymize.columns) if self.pseudonymize is not None else ()


class TableMap(StrictModel):
    """One table of the data map: whose rows it holds, what is personal, what erasure does."""

    store: StoreName
    table: TableName
    subject: Annotated[dict[KindName, Ways], Field(min_length=1)]
    """Subject kind -> how a row belongs to a subject of that kind."""
    personal: dict[Identifier, Category] = Field(default_factory=dict)
    """The columns holding personal data, each with its category."""
    erase: Annotated[Erase, BeforeValidator(_erase)]

    @property
    def name(self) -> str:
        """``store.table``, how problems name the entry."""
        return f"{self.store}.{self.table}"


@dataclass(frozen=True)
class DataMap:
    """Every subject kind and mapped table of a policy directory, with where each is declared."""

    subjects: Mapping[str, SubjectKind] = field(default_factory=dict)
    tables: tuple[TableMap, ...] = ()
    kind_sources: Mapping[str, Source] = field(default_factory=dict)
    """Where each subject kind is declared."""
    table_sources: tuple[Source, ...] = ()
    """Where each table is mapped, in the order of ``tables``."""

    def __bool__(self) -> bool:
        return bool(self.subjects or self.tables)

    def located(self) -> Iterator[tuple[TableMap, Source]]:
        """Each mapped table with where it is mapped."""
        return zip(self.tables, self.table_sources, strict=True)

    def table(self, store: str, table: str) -> TableMap | None:
        """The entry of ``store.table``, or None."""
        return next((t for t in self.tables if (t.store, t.table) == (store, table)), None)

    def ways(self, kind: str) -> Iterator[tuple[str, str, Way]]:
        """Every (store, table, way) the map gives to subjects of ``kind``."""
        for entry in self.tables:
            for way in entry.subject.get(kind, ()):
                yield entry.store, entry.table, way

    def dumped(self) -> dict[str, Any]:
        """The map as plain values, for digests."""
        return {"subjects": {k: v.model_dump(mode="json") for k, v in self.subjects.items()},
                "data_map": [t.model_dump(mode="json") for t in self.tables]}


def data_map_problems(data_map: DataMap, rules: Sequence[Rule],
                      rule_sources: Mapping[str, Source]) -> list[Problem]:
    """What is wrong with the map as a whole, and with rules' subject kinds.

    Kinds used but not declared, tables mapped twice, erasures that leave personal columns as
    they are without saying why; once kinds are declared, a rule's kind must be one of them.
    """
    problems: list[Problem] = []
    declared = ", ".join(sorted(data_map.subjects)) or "none"
    seen: dict[str, Source] = {}
    for entry, source in data_map.located():
        earlier = seen.get(entry.name)
        if earlier is not None:
            problems.append(Problem(source.file, source.line, f"data map {entry.name}",
                                    f"{entry.name} is already mapped at "
                                    f"{earlier.file}:{earlier.line}",
                                    "map each table once; give it every subject kind there"))
            continue
        seen[entry.name] = source
        problems.extend(
            Problem(source.file, source.line_of(("subject", kind)), f"data map {entry.name}",
                    f"subject kind {kind!r} is not declared (declared: {declared})",
                    f"declare it under 'subjects:' ({kind}: {{description: ...}}) or correct "
                    "its spelling")
            for kind in entry.subject if kind not in data_map.subjects)
        problems.extend(_unerased(entry, source))
    if data_map.subjects:
        for rule in rules:
            for kind in rule.subjects:
                if kind not in data_map.subjects:
                    source = rule_sources[rule.id]
                    problems.append(Problem(
                        source.file, source.line_of(("subjects", kind)), rule.id,
                        f"subject kind {kind!r} is not declared (declared: {declared})",
                        "declare it under 'subjects:' or correct its spelling"))
    return problems


def _unerased(entry: TableMap, source: Source) -> Iterator[Problem]:
    erase = entry.erase
    for key, columns in (("anonymize", erase.anonymized), ("pseudonymize", erase.pseudonymized)):
        for column in columns:
            if column not in entry.personal:
                yield Problem(source.file, source.line_of(("erase", key, column)),
                              f"data map {entry.name}",
                              f"erasure would {key} {column!r}, which is not listed as personal",
                              f"add it under 'personal:' with its category ({column}: "
                              "contact, identity, ...), or leave it as it is")
    if erase.effect in {"delete", "keep"}:
        return
    left = [c for c in entry.personal if c not in {*erase.anonymized, *erase.pseudonymized}]
    if left:
        yield Problem(source.file, source.line_of(("erase",)), f"data map {entry.name}",
                      f"erasure leaves personal column(s) {', '.join(left)} as they are",
                      f"{erase.effect} them too, or state with 'keep:' the exception that "
                      "needs them")


TableKey = tuple[str, str]
"""A table by (store, table)."""


@dataclass(frozen=True)
class ErasureStep:
    """One table of an erasure: the ways to the subject's rows and what erasing does there."""

    store: str
    table: str
    ways: tuple[Way, ...]
    erase: Erase
    personal: Mapping[str, Category]
    cycle: tuple[str, ...] = ()
    """Where foreign keys among the mapped tables make a cycle through this table: the tables
    of that cycle, by name (this one included).  No order of them satisfies every key, so
    whoever carries out the erasure must break the cycle (a reference set NULL first)."""


def erasure_plan_for(
    data_map: DataMap, kind: str, references: Mapping[TableKey, Collection[TableKey]],
) -> tuple[ErasureStep, ...]:
    """The tables erasing a subject of ``kind`` acts on, children before parents.

    ``references`` gives, for a table, the tables its foreign keys point at (from the live
    schema).  A table comes before every mapped table it references, so deleting a child
    never waits on its parent; where the keys make a cycle, the cycle's tables come together,
    by name, and say so.  Ties go by store and table name: the plan is the same every time.
    """
    mapped = {(t.store, t.table): t for t in data_map.tables if kind in t.subject}
    parents = {node: {p for p in references.get(node, ()) if p in mapped} for node in mapped}
    reach = {node: _reachable(node, parents) for node in mapped}
    groups = {frozenset({node} | {o for o in reach[node] if node in reach[o]})
              for node in mapped}
    children = {node: {c for c in mapped if node in parents[c]} for node in mapped}
    steps: list[ErasureStep] = []
    placed: set[TableKey] = set()
    while groups:
        # A group is ready when every mapped table referencing it from outside is placed; the
        # groups (a cycle, or a table on its own) reference each other without a cycle.
        ready = min((g for g in groups if all(c in placed or c in g for n in g
                                              for c in children[n])), key=min)
        groups.remove(ready)
        group = sorted(ready)
        cyclic = len(group) > 1 or group[0] in parents[group[0]]
        for node in group:
            entry = mapped[node]
            steps.append(ErasureStep(entry.store, entry.table, entry.subject[kind], entry.erase,
                                     entry.personal,
                                     tuple(t for _, t in group) if cyclic else ()))
            placed.add(node)
    return tuple(steps)


def _reachable(start: TableKey, parents: Mapping[TableKey, set[TableKey]]) -> set[TableKey]:
    """Every table reached from ``start`` along references (``start`` only through a cycle)."""
    seen: set[TableKey] = set()
    todo = list(parents[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(parents[node])
    return seen
