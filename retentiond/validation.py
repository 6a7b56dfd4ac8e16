"""Phase two of validation: every rule, hold and retention against the live store.

Checked: the store is configured and reachable (its problems are the config's, at
``[stores.NAME]`` when the caller says where that is), the table exists (else the nearest
spelling the store has is suggested) and has a primary key, every named column exists, age
columns hold dates or times, filter values fit their columns, and each action's options fit
the table (types, lengths, nullability, uniqueness).  Every problem is reported with the file
and line of the key it concerns; nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from datetime import date, datetime

from retentiond.actions import ActionOptions, DeleteOptions, action_for
from retentiond.errors import ConfigError, Problem, StoreError
from retentiond.policy.datamap import DataMap, TableMap
from retentiond.policy.filters import AllOf, AnyOf, Condition, Filter, NotOf, Op
from retentiond.policy.model import (
    Hold,
    PolicySet,
    Related,
    Retention,
    Rule,
    Source,
    UseOwn,
)
from retentiond.policy.strict import did_you_mean
from retentiond.policy.wording import brief
from retentiond.stores.base import ColumnInfo, ColumnKind, ForeignKey, Store, TableSchema
from retentiond.stores.paths import PathError, follow
from retentiond.stores.registry import Stores
from retentiond.stores.values import value_fits

Path = tuple[str | int, ...]
Entry = Rule | Hold | Retention
StoreProblem = Callable[[str, str, str], Problem]
"""``(store, what, fix)`` -> the problem, pinned where the store is configured."""
_TIME_KINDS = {ColumnKind.DATE, ColumnKind.DATETIME}


def validate_live(
    policies: PolicySet, stores: Stores, *, pseudonym_key: bool = True,
    store_problem: StoreProblem | None = None, away: Collection[str] = (),
) -> list[Problem]:
    """Every problem of the policy set against the live stores (empty when all is well).

    ``pseudonym_key`` says whether settings name a pseudonym key; without one, every
    pseudonymize rule is a problem (it could never run).  A store that cannot be opened or
    reached is one problem made by ``store_problem`` (at the config's ``[stores.NAME]``); without
    it, at the first entry's ``store`` key.  Entries on the stores named in ``away`` (known to
    be unreachable: a run records their rules as failed) are not checked.
    """
    problems = [] if pseudonym_key else _keyless(policies)
    failed: set[str] = set()
    entries: list[Entry] = [*policies.rules, *policies.holds, *policies.retentions]
    for entry in entries:
        source = policies.sources[entry.id]

        def problem(path: Path, what: str, fix: str, *, entry: Entry = entry,
                    source: Source = source) -> Problem:
            return Problem(source.file, source.line_of(path), entry.id, brief(what), fix)

        if entry.store not in stores:
            known = ", ".join(stores.names) or "none"
            problems.append(problem(("store",), f"store {entry.store!r} is not configured "
                                                f"(configured: {known})",
                                    f"add [stores.{entry.store}] to the config file"))
            continue
        if entry.store in failed or entry.store in away:
            continue
        try:
            store = stores.get(entry.store)
            store.ping()
        except (StoreError, ConfigError) as exc:
            failed.add(entry.store)
            what = f"store {entry.store!r}: {exc.what}"
            problems.append(store_problem(entry.store, what, exc.fix) if store_problem else
                            problem(("store",), what, exc.fix))
            continue
        try:
            table = store.schema(entry.table)
            if table is None:
                problems.append(problem(("table",), f"table {entry.table!r} does not exist in "
                                                    f"store {entry.store!r}",
                                        _spelling(store, entry.table)))
                continue
        except StoreError as exc:
            problems.append(problem(("table",), f"store {entry.store!r}: {exc.what}", exc.fix))
            continue
        if isinstance(entry, Rule):
            problems.extend(problem(path, what, fix)
                            for path, what, fix in _rule_in_store(entry, store))
        problems.extend(problem(path, what, fix) for path, what, fix in _check(entry, table))
    problems.extend(_data_map(policies.data_map, stores, failed, pseudonym_key=pseudonym_key,
                              store_problem=store_problem, away=away))
    return problems


def _rule_in_store(rule: Rule, store: Store) -> Iterator[tuple[Path, str, str]]:
    """What the rule needs of its store besides its table: capabilities, related rows."""
    yield from _capable(rule, store)
    if rule.age.related is not None:
        try:
            _keys, found = related_path(store, rule.table, rule.age.related)
        except StoreError as exc:
            found = [(("age", "related"), f"store {rule.store!r}: {exc.what}", exc.fix)]
        yield from found


def _data_map(data_map: DataMap, stores: Stores, failed: set[str], *, pseudonym_key: bool,
              store_problem: StoreProblem | None, away: Collection[str]) -> Iterator[Problem]:
    """Every mapped table against its live store: columns, paths, strategies, the key.

    Stores that failed for the entries before, or are known to be away, are not read again.
    """
    for entry, source in data_map.located():
        name = f"data map {entry.name}"

        def problem(path: Path, what: str, fix: str, *, source: Source = source,
                    name: str = name) -> Problem:
            return Problem(source.file, source.line_of(path), name, brief(what), fix)

        if entry.store not in stores:
            known = ", ".join(stores.names) or "none"
            yield problem(("store",), f"store {entry.store!r} is not configured "
                                      f"(configured: {known})",
                          f"add [stores.{entry.store}] to the config file")
            continue
        if entry.store in failed or entry.store in away:
            continue
        try:
            store = stores.get(entry.store)
            store.ping()
        except (StoreError, ConfigError) as exc:
            failed.add(entry.store)
            what = f"store {entry.store!r}: {exc.what}"
            yield (store_problem(entry.store, what, exc.fix) if store_problem else
                   problem(("store",), what, exc.fix))
            continue
        try:
            table = store.schema(entry.table)
        except StoreError as exc:
            yield problem(("table",), f"store {entry.store!r}: {exc.what}", exc.fix)
            continue
        if table is None:
            yield problem(("table",), f"table {entry.table!r} does not exist in store "
                                      f"{entry.store!r}", _spelling(store, entry.table))
            continue
        if not table.primary_key:
            yield problem(("table",), f"table {table.name!r} has no primary key, so a "
                                      "subject's rows cannot be erased one by one and audited",
                          "add a primary key to the table")
        for path, what, fix in _mapped(entry, table, store, pseudonym_key=pseudonym_key):
            yield problem(path, what, fix)


def _mapped(entry: TableMap, table: TableSchema, store: Store, *, pseudonym_key: bool,
            ) -> Iterator[tuple[Path, str, str]]:
    for column in entry.personal:
        if column not in table.columns:
            yield ("personal", column), _missing(table, column), _choose(table)
    for kind, ways in entry.subject.items():
        for way in ways:
            try:
                follow(store.schema, table, way)
            except PathError as exc:
                yield (("subject", kind), f"subject {kind!r}: {exc}",
                       "name a column of the table, or a path along its declared foreign "
                       "keys ending at the subject's id")
    yield from _erasure(entry, table, store, pseudonym_key=pseudonym_key)


def _erasure(entry: TableMap, table: TableSchema, store: Store, *, pseudonym_key: bool,
             ) -> Iterator[tuple[Path, str, str]]:
    """What the erasure's strategies need that the table or the store does not have."""
    erase = entry.erase
    options: list[tuple[str, ActionOptions]] = [
        (key, found) for key, found in (("anonymize", erase.anonymize),
                                        ("pseudonymize", erase.pseudonymize))
        if found is not None]
    if erase.delete:
        options.append(("delete", DeleteOptions()))
    for key, found in options:
        action = action_for(found)
        missing = action.needs - store.capabilities
        if missing:
            yield (("erase",), f"store {entry.store!r} (kind {store.kind!r}) cannot "
                               f"{' or '.join(sorted(missing))}, which erasing by {key} needs",
                   "erase by something this store can do, or keep the rows with 'keep:'")
            continue
        if action.needs_pseudonym_key and not pseudonym_key:
            yield (("erase", key), f"{action.verbs.gerund} needs a key, and the config "
                                   "names none",
                   "set [pseudonymize] key_id and [pseudonymize.keys.<id>] file or credential")
        for finding in action.check(table):
            # An action's findings point into a rule's 'action: columns:'; here the columns
            # stand right under the erasure's key.
            inner = finding.path[2:] if finding.path[:2] == ("action", "columns") else ()
            yield ("erase", key, *inner), finding.what, finding.fix


def _spelling(store: Store, table: str) -> str:
    """How to fix a table name the store does not have: the nearest one it has, if any."""
    schema, _, name = table.rpartition(".")
    names = store.table_names(schema or None)
    same = [found for found in names if found.lower() == name.lower()]
    nearest = same[0] if same else did_you_mean(name, names)
    if nearest is None:
        return "check the table name (and schema) in the rule"
    spelt = f"{schema}.{nearest}" if schema else nearest
    return (f"did you mean {spelt!r}? write it as the store spells it"
            + (" (table names are case-sensitive)" if same else ""))


def _keyless(policies: PolicySet) -> list[Problem]:
    """Every rule that takes the pseudonym key, when the config names none: it could never run."""
    problems = []
    for rule in policies.rules:
        action = action_for(rule.action)
        if action.needs_pseudonym_key:
            source = policies.sources[rule.id]
            problems.append(Problem(
                source.file, source.line_of(("action",)), rule.id,
                f"{action.verbs.gerund} needs a key, and the config names none",
                "set [pseudonymize] key_id and [pseudonymize.keys.<id>] file or credential"))
    return problems


def _capable(rule: Rule, store: Store) -> Iterator[tuple[Path, str, str]]:
    """What the rule's action needs that its store's kind cannot do."""
    missing = action_for(rule.action).needs - store.capabilities
    if missing:
        yield (("action", "type"),
               f"store {rule.store!r} (kind {store.kind!r}) cannot "
               f"{' or '.join(sorted(missing))}, which {rule.action.type!r} needs",
               "use an action this store can do, or a store of another kind")


def schema_warnings(policies: PolicySet, stores: Stores) -> list[Problem]:
    """What is valid but unsafe to leave as it is: partitions lacking their siblings' keys.

    A rule still runs; the rows such a gap would orphan are kept (blocked) and say so in the
    plan, until the key is added.  Stores that cannot be read are validation's problems.
    """
    warnings: list[Problem] = []
    for rule in policies.rules:
        if rule.store not in stores:
            continue
        source = policies.sources[rule.id]
        try:
            gaps = _unenforced_below(stores.get(rule.store), rule.table)
        except StoreError:
            continue
        warnings.extend(Problem(
            source.file, source.line_of(("table",)), rule.id,
            f"partitions {', '.join(fk.within)} of table {fk.table!r} lack the foreign key "
            f"({', '.join(fk.columns)}) -> {fk.ref_table} that their sibling partitions have; "
            f"{fk.ref_table} rows their rows reference are kept, or they would be orphaned",
            "add the foreign key to those partitions (ALTER TABLE ... ADD FOREIGN KEY)")
            for fk in gaps)
    return warnings


def _unenforced_below(store: Store, table: str) -> list[ForeignKey]:
    """Unenforced keys pointing at ``table`` or at any table below it."""
    found: list[ForeignKey] = []
    todo, seen = [table], {table}
    while todo:
        schema = store.schema(todo.pop())
        for fk in schema.referenced_by if schema is not None else ():
            if not fk.enforced:
                found.append(fk)
            elif fk.table not in seen:
                seen.add(fk.table)
                todo.append(fk.table)
    return found


def check_rule(rule: Rule, table: TableSchema) -> list[str]:
    """What no longer fits between ``rule`` and its live table (empty when all is well)."""
    return [f"{what}; {fix}" for _path, what, fix in _check(rule, table)]


def _check(entry: Entry, table: TableSchema) -> Iterator[tuple[Path, str, str]]:
    if isinstance(entry, Rule):
        if not table.primary_key:
            yield (("table",), f"table {table.name!r} has no primary key, so its rows cannot be "
                               "acted on one by one and audited",
                   "add a primary key to the table, or remove the rule")
        if entry.age.column is not None:
            yield from _time_column(table, entry.age.column, ("age", "column"))
        if isinstance(entry.age.when_none, UseOwn):
            yield from _time_column(table, entry.age.when_none.use, ("age", "when_none", "use"))
        for finding in action_for(entry.action).check(table):
            yield finding.path, finding.what, finding.fix
        for kind, column in entry.subjects.items():
            # A hold on a subject of this kind would otherwise be refused only when placed.
            if column not in table.columns:
                yield ("subjects", kind), _missing(table, column), _choose(table)
    elif isinstance(entry, Retention):
        yield from _time_column(table, entry.column, ("column",))
    if entry.where is not None:
        yield from _filter(entry.where, table, ("where",))


def related_path(store: Store, table: str, related: Related,
                 ) -> tuple[tuple[ForeignKey, ...], list[tuple[Path, str, str]]]:
    """The foreign keys from ``table`` out to the related rows, and what is wrong on the way.

    Every hop must be a real foreign key of the live store (its columns ``via``, in that
    order, referencing the previous table), and the related column a date or time.
    """
    keys: list[ForeignKey] = []
    parent = table
    hops = related.path
    for number, hop in enumerate(hops):
        where: Path = ("age", "related") if number == len(hops) - 1 else (
            "age", "related", "through", number)
        child = store.schema(hop.table)
        if child is None:
            return (), [((*where, "table"), f"table {hop.table!r} does not exist in the store",
                         "name the table of the related rows (and its schema)")]
        wanted = tuple(hop.via)
        found = [fk for fk in child.references
                 if fk.ref_table == parent and fk.columns == wanted]
        if not found:
            known = ", ".join(f"({', '.join(fk.columns)})" for fk in child.references
                              if fk.ref_table == parent) or "none"
            return (), [((*where, "via"),
                         f"table {hop.table!r} has no foreign key ({', '.join(wanted)}) -> "
                         f"{parent!r} (its keys to {parent!r}: {known})",
                         f"name the columns of a foreign key of {hop.table!r} referencing "
                         f"{parent!r}, or add that key to the schema")]
        keys.append(found[0])
        parent = hop.table
    last = store.schema(parent)
    problems = [] if last is None else list(
        _time_column(last, related.column, ("age", "related", "column")))
    return tuple(keys), problems


def _time_column(table: TableSchema, column: str, path: Path) -> Iterator[tuple[Path, str, str]]:
    info = table.columns.get(column)
    if info is None:
        yield path, _missing(table, column), _choose(table)
    elif info.kind not in _TIME_KINDS:
        times = ", ".join(sorted(c.name for c in table.columns.values() if c.kind in _TIME_KINDS))
        yield (path, f"column {column!r} is {info.type_name}, not a date or time",
               f"measure age on a date/time column ({times or 'the table has none'})")


def _filter(node: Filter, table: TableSchema, path: Path) -> Iterator[tuple[Path, str, str]]:
    match node:
        case AllOf(all=parts) | AnyOf(any=parts):
            key = "all" if isinstance(node, AllOf) else "any"
            for index, part in enumerate(parts):
                yield from _filter(part, table, (*path, key, index))
        case NotOf(not_=inner):
            yield from _filter(inner, table, (*path, "not"))
        case Condition():
            info = table.columns.get(node.column)
            if info is None:
                yield (*path, "column"), _missing(table, node.column), _choose(table)
                return
            values = node.value if isinstance(node.value, list) else [node.value]
            for value in values:
                why = _comparable(info, value, node.op)
                if why is not None:
                    yield (*path, "value"), why, "compare with a value of the column's type"
                    return


def _comparable(info: ColumnInfo, value: object, op: Op) -> str | None:
    if value is None:
        return None
    if op is Op.LIKE and info.kind is not ColumnKind.TEXT:
        return f"'like' needs a text column; {info.name!r} is {info.type_name}"
    if info.kind is ColumnKind.DATETIME and isinstance(value, date):
        return None  # a date compares with a timestamp as its midnight
    if info.kind in _TIME_KINDS and isinstance(value, str):
        parse = date.fromisoformat if info.kind is ColumnKind.DATE else datetime.fromisoformat
        try:
            parse(value)
        except ValueError:
            return f"{value!r} is not an ISO {info.kind.value} for column {info.name!r}"
        return None
    if info.kind is ColumnKind.DATE and isinstance(value, datetime):
        return f"{value!r} has a time but column {info.name!r} holds dates"
    if info.kind is ColumnKind.TEXT and isinstance(value, str):
        return None  # filter values are compared, not stored: length does not matter
    if info.kind is ColumnKind.OTHER:
        return None
    if isinstance(value, str | int | float | bool | date):
        return value_fits(info, value)
    return None


def _missing(table: TableSchema, column: str) -> str:
    return f"column {column!r} does not exist in table {table.name!r}"


def _choose(table: TableSchema) -> str:
    return "use one of: " + ", ".join(sorted(table.columns))
