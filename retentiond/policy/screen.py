"""What a policy file may not be, checked before it is built into YAML objects.

A policy file is input like any other: it may be large, not text, nested thousands deep, an
alias bomb (a few lines that expand to millions of nodes), or carry tags that ask a YAML
library to build Python objects.  Each of these is refused here with a line number and the
limit it broke, from the YAML parser's events alone (the parser keeps a stack of states, not
Python frames, so depth cannot exhaust the interpreter's), before anything is constructed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
)

MAX_BYTES = 1024 * 1024
"""A policy file's largest size: far beyond any hand-written set of rules."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists (filters nest; 64 levels is beyond any real one)."""
MAX_VALUES = 200_000
"""Most values (scalars, lists, mappings) a file may stand for, each alias counted as what
it stands for: a few lines of aliases can otherwise stand for billions (an alias bomb)."""
CORE_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in (
    "str", "int", "float", "bool", "null", "seq", "map", "timestamp"))
"""The explicit tags a policy may use (``!!str 007``); every other tag is refused."""


@dataclass(frozen=True)
class Refusal:
    """Why a file is refused: at ``line`` (1-based; None for the whole file), what, the fix."""

    line: int | None
    what: str
    fix: str


def screened(data: bytes) -> str | Refusal:
    """A policy file's text when it may be built into YAML objects, else why it may not."""
    content = _decoded(data)
    if isinstance(content, Refusal):
        return content
    return _refusal(content) or content


def _decoded(data: bytes) -> str | Refusal:
    """The file's text, or why it cannot be a policy file (too large, not UTF-8)."""
    if len(data) > MAX_BYTES:
        return Refusal(None, f"the file has {len(data):,} bytes, over the limit of "
                             f"{MAX_BYTES:,}", "split it into several policy files")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        return Refusal(line, f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                       "save the file as UTF-8")


def _refusal(content: str) -> Refusal | None:
    """Why the YAML in ``content`` is refused before it is built, or None.

    Syntax errors are left to the loader, which reports them with their own words.
    """
    count = _Count()
    try:
        for event in YAML(typ="rt").parse(content):
            line = event.start_mark.line + 1 if event.start_mark is not None else None
            tag = getattr(event, "tag", None)  # scalars and collections; aliases have none
            if tag is not None and tag not in CORE_TAGS:
                return Refusal(line, f"the YAML tag {tag!r} is not allowed",
                               "remove the tag: policy files hold plain values")
            if isinstance(event, CollectionStartEvent):
                count.open(event.anchor)
            elif isinstance(event, CollectionEndEvent):
                count.close()
            elif isinstance(event, AliasEvent):
                count.alias(event.anchor)
            elif isinstance(event, ScalarEvent):
                count.value(event.anchor, 1)
            if count.depth > MAX_DEPTH:
                return Refusal(line, f"nested deeper than {MAX_DEPTH} levels",
                               "flatten the filter (all/any take lists of conditions)")
            if count.largest > MAX_VALUES:
                return Refusal(line, f"the file stands for more than {MAX_VALUES:,} values "
                                     "(an alias counts as all it stands for)",
                               "write fewer values, or split the file")
    except YAMLError:
        return None
    return None


class _Count:
    """Values counted as the parser's events arrive, each alias as all its anchor stands for."""

    def __init__(self) -> None:
        self._anchored: dict[str, int] = {}
        self._open: list[tuple[str | None, int]] = []
        self.largest = 0
        """The most values any collection read so far stands for."""

    @property
    def depth(self) -> int:
        """How many collections are open."""
        return len(self._open)

    def open(self, anchor: str | None) -> None:
        self._open.append((anchor, 1))

    def close(self) -> None:
        anchor, size = self._open.pop()
        self.value(anchor, size)

    def alias(self, anchor: str | None) -> None:
        self.value(None, self._anchored.get(anchor or "", 1))

    def value(self, anchor: str | None, size: int) -> None:
        if anchor is not None:
            self._anchored[anchor] = size
        if self._open:
            outer, counted = self._open[-1]
            self._open[-1] = (outer, counted + size)
            self.largest = max(self.largest, counted + size)
