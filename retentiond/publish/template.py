"""The published pages' templates: the Jinja environment, its filters, the colour of each action.

The HTML of the schedule and of the review report is in ``templates/`` beside this module,
shipped inside the package.  Autoescape is on for every template, whatever its name: rule ids,
reasons, hold cases and error messages come from policy files and the ledger, and reach the page
only escaped, in elements and in quoted attributes alike.  Only what a template itself made (a
macro's output) passes as markup.  Values are escaped the way :func:`html.escape` does it
(``&#x27;``, ``&quot;``), as the pages always have been.

Nothing a page shows reaches the network: no scripts, no web fonts, no images but inline SVG.
The page carries a Content-Security-Policy that forbids loading anything, so a stray external
reference would show up as an error in the browser instead of as a silent request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import cache
from html import escape

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from retentiond.actions import REGISTRY

ACTION_COLOURS: Mapping[str, str] = {
    **{action.name: action.colour for action in REGISTRY.values()},
    # what later happens to a quarantined batch: ledger actions, not a rule's
    "purge": "#542788",
    "restore": "#7f7f7f",
}
"""One colour per action, the same in every chart and legend (in this order)."""
OTHER_COLOUR = "#444444"


def colour(series: str) -> str:
    """The colour of an action (or any other series name)."""
    return ACTION_COLOURS.get(series, OTHER_COLOUR)


def colour_order(seen: Iterable[str]) -> list[str]:
    """The actions in ``seen``: those with a colour in the table's order, then the rest sorted."""
    present = set(seen)
    known = [a for a in ACTION_COLOURS if a in present]
    return known + sorted(present - set(known))


def number(value: int) -> str:
    """An integer with thousands separators, as every figure on the page is written."""
    return f"{value:,}"


def stamp(text: str) -> str:
    """A timestamp as a reviewer reads it: ``2026-03-15 09:30 UTC`` (dates stay dates).

    A timestamp without an offset is taken as UTC; text that is no timestamp stays as it is.
    """
    if len(text) <= len("YYYY-MM-DD"):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def sentence(text: str) -> str:
    """``text`` as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _escaped(value: object) -> object:
    """Every value a template writes, escaped as :func:`html.escape` does; markup as it is.

    Autoescape would escape it too (``&#39;`` where this writes ``&#x27;``); it leaves
    :class:`Markup` alone, so the value is escaped exactly once.
    """
    if hasattr(value, "__html__"):
        return value
    return Markup(escape(str(value), quote=True))  # noqa: S704 - escaped right here


@cache
def environment() -> Environment:
    """The one environment of the published pages: the package's templates, autoescaped."""
    env = Environment(
        loader=PackageLoader("retentiond.publish", "templates"),
        autoescape=True,
        finalize=_escaped,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(number=number, stamp=stamp, sentence=sentence)
    return env


def render(name: str, /, **context: object) -> str:
    """The template ``name`` of ``templates/``, filled in with ``context``."""
    return environment().get_template(name).render(**context)
