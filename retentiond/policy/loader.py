"""Load a policy directory: YAML -> shape check -> frozen models, every problem with file:line.

Phase one of validation happens here and needs no database: syntax, duplicate keys, unknown
keys, types, periods, filters, duplicate ids and rules that contradict each other.  Phase two
(:mod:`retentiond.validation`) checks each entry against the live store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from retentiond.errors import PolicyError, Problem
from retentiond.policy.checks import cross_check
from retentiond.policy.datamap import DataMap, SubjectKind, TableMap, data_map_problems
from retentiond.policy.model import Hold, PolicyFile, PolicySet, Retention, Rule, Source
from retentiond.policy.screen import Refusal, decoded, loaded
from retentiond.policy.strict import SUGGESTION
from retentiond.policy.wording import brief, shown

PATTERNS = ("*.yaml", "*.yml")
_KINDS = {"rules": "rule", "holds": "hold", "retain": "retention"}


def load_policies(directory: Path) -> PolicySet:
    """Every policy file in ``directory``, validated in shape.

    Raises PolicyError listing every problem (not just the first) when anything is wrong.
    """
    files = _policy_files(directory)
    problems: list[Problem] = []
    rules: list[Rule] = []
    holds: list[Hold] = []
    retentions: list[Retention] = []
    sources: list[tuple[str, Source]] = []
    mapped = _Mapped()
    for path in files:
        loaded = _load_file(path, problems)
        if loaded is None:
            continue
        parsed, raw = loaded
        mapped.add(path, parsed, raw, problems)
        entries: list[tuple[str, Sequence[Rule | Hold | Retention]]] = [
            ("rules", parsed.rules), ("holds", parsed.holds), ("retain", parsed.retain)]
        for key, declared in entries:
            sources.extend((entry.id, _source_of(path, raw[key][index]))
                           for index, entry in enumerate(declared))
        rules.extend(parsed.rules)
        holds.extend(parsed.holds)
        retentions.extend(parsed.retain)
    sources.sort(key=lambda item: (str(item[1].file), item[1].line))
    problems.extend(cross_check(rules, holds, retentions, sources))
    data_map = mapped.data_map()
    problems.extend(data_map_problems(data_map, rules, dict(sources)))
    if problems:
        raise PolicyError(problems)
    return PolicySet(tuple(rules), tuple(holds), tuple(retentions), dict(sources), data_map)


class _Mapped:
    """The data map as it is gathered from the files, with where each part is declared."""

    def __init__(self) -> None:
        self.subjects: dict[str, SubjectKind] = {}
        self.kind_sources: dict[str, Source] = {}
        self.tables: list[TableMap] = []
        self.table_sources: list[Source] = []

    def add(self, path: Path, parsed: PolicyFile, raw: CommentedMap,
            problems: list[Problem]) -> None:
        for kind, declared in parsed.subjects.items():
            source = Source(path, raw["subjects"].lc.key(kind)[0] + 1)
            earlier = self.kind_sources.get(kind)
            if earlier is not None:
                problems.append(Problem(path, source.line, f"subject {kind}",
                                        f"subject kind {kind!r} is already declared at "
                                        f"{earlier.file}:{earlier.line}",
                                        "declare each kind once"))
                continue
            self.subjects[kind] = declared
            self.kind_sources[kind] = source
        self.tables.extend(parsed.data_map)
        self.table_sources.extend(_source_of(path, raw["data_map"][index])
                                  for index in range(len(parsed.data_map)))

    def data_map(self) -> DataMap:
        return DataMap(dict(self.subjects), tuple(self.tables), dict(self.kind_sources),
                       tuple(self.table_sources))


def _policy_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise PolicyError([Problem(directory, None, None, "the policy directory does not exist",
                                   "create it, or point policy_dir (or --policies) at it")])
    files = sorted({p for pattern in PATTERNS for p in directory.glob(pattern) if p.is_file()})
    if not files:
        raise PolicyError([Problem(directory, None, None,
                                   "the policy directory holds no *.yaml or *.yml files",
                                   "add policy files; see policies/ in the project for examples")])
    return files


def _load_file(path: Path, problems: list[Problem]) -> tuple[PolicyFile, CommentedMap] | None:
    raw = _document(path)
    if isinstance(raw, Problem):
        problems.append(raw)
        return None
    try:
        parsed = PolicyFile.model_validate(plain(raw))
    except ValidationError as exc:
        problems.extend(_problems_from(path, raw, exc))
        return None
    if not (parsed.rules or parsed.holds or parsed.retain or parsed.subjects
            or parsed.data_map):
        problems.append(Problem(path, 1, None, "the file declares nothing",
                                "add rules, holds or retain entries, or remove the file"))
        return None
    return parsed, raw


def _document(path: Path) -> CommentedMap | Problem:
    """The file's YAML mapping, read once and screened on the way, or what is wrong with it."""
    try:
        content = decoded(path.read_bytes())
    except OSError as exc:
        return Problem(path, None, None, f"cannot read: {exc.strerror}",
                       "check the file and its permissions")
    if isinstance(content, Refusal):
        return Problem(path, content.line, None, content.what, content.fix)
    try:
        raw = loaded(content)
    except MarkedYAMLError as exc:
        return _syntax_problem(path, content, exc)
    except ValueError as exc:  # ruamel builds dates itself and lets 2027-02-30 escape
        line, written = _bad_date(content)
        return Problem(path, line, None, f"YAML: {written or 'a date'}: {exc}",
                       "write a real calendar date as YYYY-MM-DD")
    except ReaderError as exc:  # control characters: YAML text may not hold them raw
        line = content.count("\n", 0, max(exc.position, 0)) + 1
        return Problem(path, line, None,
                       f"YAML: the character U+{exc.character:04X} is not allowed in YAML text",
                       'remove it, or write it as an escape in double quotes ("\\x07")')
    except YAMLError as exc:  # the text is in memory: no OSError or decoding error here
        return Problem(path, None, None, f"cannot read: {brief(str(exc))}", "fix the file")
    if isinstance(raw, Refusal):
        return Problem(path, raw.line, None, raw.what, raw.fix)
    if raw is None:
        return Problem(path, 1, None, "the file is empty",
                       "add rules, holds or retain entries, or remove the file")
    if not isinstance(raw, CommentedMap):
        return Problem(path, 1, None, "a policy file must be a mapping",
                       "start with 'rules:', 'holds:' or 'retain:'")
    return raw


def _syntax_problem(path: Path, content: str, exc: MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = min(mark.line + 1, max(content.count("\n"), 1)) if mark is not None else None
    what = (exc.problem or exc.context or "invalid YAML").strip()
    duplicate = _DUPLICATE.match(what)  # the message quotes both values, aliases expanded
    if duplicate:
        what = f"found duplicate key {shown(duplicate.group(1))}"
    fix = "remove or rename one of the duplicate keys" if duplicate else "fix the YAML syntax"
    return Problem(path, line, None, f"YAML: {brief(what)}", fix)


_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _bad_date(content: str) -> tuple[int | None, str | None]:
    for number, line in enumerate(content.splitlines(), start=1):
        for match in _DATE.finditer(line):
            try:
                date(*map(int, match.groups()))
            except ValueError:
                return number, match.group(0)
    return None, None


def plain(node: Any) -> Any:  # noqa: ANN401 - YAML nodes are untyped by nature
    """The YAML tree as plain Python values (no ruamel subclasses reach the models)."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(value) for value in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, datetime):
        return datetime(node.year, node.month, node.day, node.hour, node.minute, node.second,
                        node.microsecond, tzinfo=node.tzinfo)
    if isinstance(node, date):
        return date(node.year, node.month, node.day)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _source_of(path: Path, node: CommentedMap) -> Source:
    lines: dict[tuple[str | int, ...], int] = {}

    def walk(value: Any, prefix: tuple[str | int, ...]) -> None:  # noqa: ANN401
        if isinstance(value, CommentedMap):
            for key in value:
                lines[(*prefix, str(key))] = value.lc.key(key)[0] + 1
                walk(value[key], (*prefix, str(key)))
        elif isinstance(value, CommentedSeq):
            for index, item in enumerate(value):
                lines[(*prefix, index)] = value.lc.item(index)[0] + 1
                walk(item, (*prefix, index))

    walk(node, ())
    return Source(path, node.lc.line + 1, lines)


def _problems_from(path: Path, raw: CommentedMap, exc: ValidationError) -> Iterable[Problem]:
    for error in exc.errors():
        node, line, trail = _locate(raw, error["loc"])
        subject = _subject(raw, error["loc"])
        what, fix = _explain(error, node, trail)
        yield Problem(path, line, subject, brief(what), fix)


_DUPLICATE = re.compile(r'^found duplicate key "(.*?)" with value ', re.DOTALL)
_ID_LENGTH = 80


def _locate(raw: CommentedMap, loc: tuple[Any, ...]) -> tuple[Any, int, list[str]]:
    """Follow a pydantic error location through the YAML tree; skip union tags on the way."""
    node: Any = raw
    line = raw.lc.line + 1
    trail: list[str] = []
    for part in loc:
        if isinstance(node, CommentedMap) and str(part) in node:
            line = node.lc.key(str(part))[0] + 1
            node = node[str(part)]
            trail.append(str(part))
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
            trail.append(str(part))
        elif isinstance(part, str) and part not in _TAGS and part != "[key]":
            trail.append(part)
    return node, line, trail


def _union_tags(schema: object) -> set[str]:
    """Every tag of every tagged union in a pydantic core schema (action types, strategies)."""
    if isinstance(schema, dict):
        own = set(schema["choices"]) if schema.get("type") == "tagged-union" else set()
        return own.union(*(_union_tags(value) for value in schema.values()))
    if isinstance(schema, list | tuple):
        return set().union(*(_union_tags(value) for value in schema))
    return set()


# What pydantic puts into an error's location that is not a key of the YAML: the tag of the
# union member it tried, and the names of its own validator steps.  Taken from the models, so
# a new action or strategy needs no entry here.
_TAGS = _union_tags(PolicyFile.__pydantic_core_schema__) | {
    "function-after", "function-before", "function-plain", "list[...]", "dict[...]"}


def _subject(raw: CommentedMap, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 2 and loc[0] == "data_map" and isinstance(loc[1], int):  # noqa: PLR2004
        entries = raw.get("data_map")
        entry = entries[loc[1]] if isinstance(entries, CommentedSeq) and loc[1] < len(
            entries) else None
        if isinstance(entry, CommentedMap) and isinstance(entry.get("store"), str) \
                and isinstance(entry.get("table"), str):
            return f"data map {entry['store']}.{entry['table']}"
        return f"data map #{loc[1] + 1}"
    if len(loc) >= 2 and loc[0] == "subjects":  # noqa: PLR2004
        return f"subject {loc[1]}"
    if len(loc) >= 2 and loc[0] in _KINDS and isinstance(loc[1], int):  # noqa: PLR2004
        entries = raw.get(loc[0])
        if isinstance(entries, CommentedSeq) and loc[1] < len(entries):
            entry = entries[loc[1]]
            named = isinstance(entry, CommentedMap) and isinstance(entry.get("id"), str)
            if named and 0 < len(entry["id"]) <= _ID_LENGTH and entry["id"].isprintable():
                return str(entry["id"])
        return f"{_KINDS[loc[0]]} #{loc[1] + 1}"
    return None


def _explain(error: Any, node: Any, trail: list[str]) -> tuple[str, str]:  # noqa: ANN401
    kind = error["type"]
    field = trail[-1] if trail else "file"
    message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(node, dict | list) and not node and "where" in trail:
        return ("an empty filter would match every record",
                "remove 'where' or give it at least one condition")
    if kind == "extra_forbidden":
        hint = error.get("ctx", {}).get(SUGGESTION)
        return f"unknown key {field!r}", (f"did you mean {hint!r}? correct its spelling" if hint
                                          else "remove it or correct its spelling")
    if kind == "missing":
        return f"{field!r} is missing", f"add '{field}:'"
    if kind == "too_short" and "where" in trail:
        return ("an empty filter would match every record",
                "remove 'where' or give it at least one condition")
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        return (f"{field}: unknown {context.get('discriminator', 'kind')} "
                f"{context.get('tag')!r}", f"use one of {context.get('expected_tags')}")
    if kind == "union_tag_not_found":
        return f"{field}: {message}", f"add the missing key to {field!r}"
    what, _, fix = message.rpartition("; ")
    if not what:
        what, fix = fix, ""
    return f"{field}: {what}", fix or "correct the value"
