"""Messages about policy files fit on one line a person reads, whatever the file holds.

Messages quote what a file says, and a hostile file says 70,000 characters at once, line
breaks, or terminal escapes.  Quoted values are cut short and unprintable characters escaped
where a message is made, so the error line names the problem without repeating the file.
"""

from __future__ import annotations

import re

LONGEST = 500
"""Longest message part, in characters (a database server's refusal fits)."""
_SHOWN = 60
_LONG_QUOTED = (re.compile(r"'([^'\n]{60})[^'\n]{140,}'"),
                re.compile(r'"([^"\n]{60})[^"\n]{140,}"'))
"""A quoted value of 200 characters or more; its first 60 are shown."""


def shown(text: str) -> str:
    """``text`` quoted for a message, cut short when long."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + "..."


def brief(text: str) -> str:
    """``text`` as one printable line of at most :data:`LONGEST` characters.

    Long quoted values are cut short, line breaks made spaces, control characters escaped.
    """
    for pattern in _LONG_QUOTED:
        text = pattern.sub(lambda match: f"{match.group(0)[0]}{match.group(1)}...", text)
    text = " ".join(part.strip() for part in text.splitlines())
    text = "".join(char if char.isprintable() else char.encode("unicode_escape").decode()
                   for char in text)
    return text if len(text) <= LONGEST else text[:LONGEST] + "..."
