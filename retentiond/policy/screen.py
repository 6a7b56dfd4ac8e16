"""What a policy file may not be, checked while it is read, before it is built into objects.

A policy file is input like any other: it may be large, not text, nested thousands deep, an
alias bomb (a few lines that expand to millions of nodes), or carry tags that ask a YAML
library to build Python objects.  Each of these is refused here with a line number and the
limit it broke.  Size and encoding are checked on the bytes; the rest on the YAML parser's
events as the composer pulls them (the parser keeps a stack of states, not Python frames, so
depth cannot exhaust the interpreter's, and the composer never gets deeper than the limit).
The file is parsed once: screening costs no second pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    ScalarEvent,
)
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.scanner import Scanner

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


def decoded(data: bytes) -> str | Refusal:
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


def loaded(text: str) -> Any | Refusal:  # noqa: ANN401 - YAML documents are untyped by nature
    """The YAML document in ``text`` as round-trip objects (line numbers kept), or why not.

    YAML errors (syntax, duplicate keys, impossible dates) are raised as the YAML library
    raises them, for the loader to word.
    """
    yaml = YAML(typ="rt")
    yaml.Scanner = Scanner  # no comment gathering: comments are never read back
    yaml.Parser = _ScreeningParser
    yaml.composer.warn_double_anchors = False  # a redefined anchor is plain YAML
    try:
        return yaml.load(text)
    except _Refused as refused:
        return refused.refusal


class _Refused(Exception):  # noqa: N818 - carries a Refusal out of the parser
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.what)
        self.refusal = refusal


class _ScreeningParser(RoundTripParser):
    """The round-trip parser, refusing the document at the first event that breaks a limit."""

    def __init__(self, loader: Any) -> None:  # noqa: ANN401
        super().__init__(loader)
        self._count = _Count()

    def get_event(self) -> Any:  # noqa: ANN401
        event = super().get_event()
        refusal = self._count.see(event)
        if refusal is not None:
            raise _Refused(refusal)
        return event


@dataclass
class _Open:
    """A collection the parser is inside: its anchor, what it stands for so far, its kind."""

    anchor: str | None
    size: int
    mapping: bool
    children: int = 0

    @property
    def key_next(self) -> bool:
        """Whether the next node of this collection is a mapping key."""
        return self.mapping and self.children % 2 == 0


class _Count:
    """Values counted as the parser's events arrive, each alias as all its anchor stands for."""

    def __init__(self) -> None:
        self._anchored: dict[str, int] = {}
        self._collections: set[str] = set()
        """Anchors that name a list or mapping (not a plain value)."""
        self._open: list[_Open] = []
        self.largest = 0
        """The most values any collection read so far stands for."""

    def see(self, event: Any) -> Refusal | None:  # noqa: ANN401 - ruamel's events
        """Count ``event``; why the document is refused once it breaks a limit, else None."""
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        refusal = self._shape(event, line)
        if refusal is not None:
            return refusal
        self._count(event)
        if len(self._open) > MAX_DEPTH:
            return Refusal(line, f"nested deeper than {MAX_DEPTH} levels",
                           "flatten the filter (all/any take lists of conditions)")
        if self.largest > MAX_VALUES:
            return Refusal(line, f"the file stands for more than {MAX_VALUES:,} values "
                                 "(an alias counts as all it stands for)",
                           "write fewer values, or split the file")
        return None

    def _shape(self, event: Any, line: int | None) -> Refusal | None:  # noqa: ANN401
        """Why ``event`` cannot be in a policy file at all: a foreign tag, a complex key."""
        tag = getattr(event, "tag", None)  # scalars and collections; aliases have none
        if tag is not None and tag not in CORE_TAGS:
            return Refusal(line, f"the YAML tag {tag!r} is not allowed",
                           "remove the tag: policy files hold plain values")
        if self._open and self._open[-1].key_next and (
                isinstance(event, CollectionStartEvent) or (
                    isinstance(event, AliasEvent) and event.anchor in self._collections)):
            return Refusal(line, "a list or mapping is used as a mapping key",
                           "write each key as a plain word ('? ' starts a complex key)")
        return None

    def _count(self, event: Any) -> None:  # noqa: ANN401
        if isinstance(event, CollectionStartEvent):
            self._open.append(_Open(event.anchor, 1, isinstance(event, MappingStartEvent)))
        elif isinstance(event, CollectionEndEvent):
            closed = self._open.pop()
            if closed.anchor is not None:
                self._collections.add(closed.anchor)
            self._value(closed.anchor, closed.size)
        elif isinstance(event, AliasEvent):
            self._value(None, self._anchored.get(event.anchor or "", 1))
        elif isinstance(event, ScalarEvent):
            if event.anchor is not None:
                self._collections.discard(event.anchor)
            self._value(event.anchor, 1)

    def _value(self, anchor: str | None, size: int) -> None:
        if anchor is not None:
            self._anchored[anchor] = size
        if self._open:
            outer = self._open[-1]
            outer.size += size
            outer.children += 1
            self.largest = max(self.largest, outer.size)
