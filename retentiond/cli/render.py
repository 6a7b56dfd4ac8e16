"""Output as people read it (tables, blocks) and as scripts read it (JSON-ready dicts).

A :class:`Listing` is a table when every cell fits whole in the width it is given, and one
block of ``name: value`` lines per row when it does not: an id, a count or a brake is never
cut or ellipsized, on a narrow terminal or in a pipe.  Every time a person reads is
:func:`stamp`-ed the same way.  Nothing here prints; the CLI decides where output goes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from retentiond.ledger.chain import jsonable
from retentiond.policy.model import Age
from retentiond.run.engine import RulePlan
from retentiond.stores.base import Key, Reached

UNLIMITED = 1_000_000
"""A width no table reaches: what a table needs when nothing wraps."""


def stamp(moment: datetime | date | str | None, missing: str = "-") -> str:
    """A moment as people read it everywhere: ISO 8601 in UTC to the second.

    ``2026-12-07T13:32:05Z``; a day stays ``2026-12-07``; a naive moment is UTC; a string is
    read as ISO 8601 (the ledger's ``at``), and shown as it is when it is not one.  ``missing``
    stands for None.
    """
    if moment is None:
        return missing
    if isinstance(moment, str):
        text = moment
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
    if not isinstance(moment, datetime):
        return moment.isoformat()
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Cell = str | Text


@dataclass
class Listing:
    """Rows of named values: a table where it fits whole, else one block per row.

    The first column names the row (the block's heading); ``numbers`` are right-aligned in
    the table.  Which shape is chosen depends only on the width the console gives.  Print it
    with ``crop=False``: see :meth:`blocks`.
    """

    title: str
    columns: Sequence[str]
    numbers: frozenset[str] = frozenset()
    rows: list[Sequence[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        """One row, a cell per column."""
        if len(cells) != len(self.columns):
            message = f"{len(cells)} cells for {len(self.columns)} columns"
            raise ValueError(message)
        self.rows.append(cells)

    def table(self) -> Table:
        """The listing as a table, no cell wrapped."""
        table = Table(title=self.title, title_justify="left")
        for name in self.columns:
            table.add_column(name, no_wrap=True,
                             justify="right" if name in self.numbers else "left")
        for row in self.rows:
            table.add_row(*row)
        return table

    def blocks(self) -> Group:
        """The listing as blocks: the first cell as heading, then ``name: value`` lines.

        No line is broken or cut, however narrow the console: print with ``crop=False`` and a
        value longer than the width runs on (the terminal wraps it; a pipe keeps it whole).
        """
        width = max((len(name) for name in self.columns[1:]), default=0) + 1
        lines: list[Text] = [Text(self.title, style="italic")]
        for row in self.rows:
            lines.append(Text())  # a blank line before each block: readable without bold too
            lines.append(Text.assemble((row[0], "bold") if isinstance(row[0], str) else row[0]))
            lines.extend(Text.assemble(f"  {name + ':':<{width}} ", value)
                         for name, value in zip(self.columns[1:], row[1:], strict=True))
        for line in lines:
            line.no_wrap, line.overflow = True, "ignore"
        return Group(*lines)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[
            RenderableType]:
        table = self.table()
        needs = Measurement.get(console, options.update_width(UNLIMITED), table).maximum
        yield table if needs <= options.max_width else self.blocks()


def _key(key: Key) -> str:
    return str(key[0]) if len(key) == 1 else "(" + ", ".join(map(str, key)) + ")"


def plan_to_dict(plan: RulePlan) -> dict[str, Any]:
    """One rule's plan with stable keys for scripts."""
    census = plan.census
    return {
        "rule": plan.rule.id,
        "version": plan.rule.version,
        "description": plan.rule.description,
        "store": plan.rule.store,
        "table": plan.rule.table,
        "action": plan.rule.action.type,
        "does": plan.action,
        "as_of": plan.as_of.isoformat(),
        "cutoff": plan.cutoff.isoformat(),
        "population": census.population if census else None,
        "matched": census.matched if census else None,
        "held": census.held if census else None,
        "protected": census.protected if census else None,
        "null_age": census.null_age if census else None,
        "blocked": census.blocked if census else None,
        "done": census.done if census else None,
        "eligible": census.eligible if census else None,
        "guards": [{"kind": g.kind, "id": g.id, "reason": g.reason, "rows": g.rows,
                    **({"until": g.until} if g.until else {})} for g in plan.guards],
        "sample_keys": [[jsonable(part) for part in key] for key in plan.samples],
        "reached": [{"table": r.table, "effect": r.effect, "rows": r.rows,
                     "population": r.population, "via": list(r.via)} for r in plan.reached],
        "limits": ({"max_rows": plan.brakes.max_rows, "max_percent": plan.brakes.max_percent}
                   if plan.brakes else None),
        "stopped_by": ({"limit": plan.stopped_by.limit, "allowed": plan.stopped_by.allowed}
                       if plan.stopped_by else None),
        "error": plan.error,
    }


def _count(value: int) -> str:
    return f"{value:,}"


def _reach_words(reached: Reached) -> str:
    if reached.effect == "set null":
        return "will have their reference set to NULL (ON DELETE SET NULL)"
    if "delete first" in reached.via:
        return "will be deleted first (on_children: delete)"
    return "will be deleted with them (ON DELETE CASCADE)"


def _rows(value: int) -> str:
    return f"{value:,} row" if value == 1 else f"{value:,} rows"


def plan_table(plans: Sequence[RulePlan]) -> Listing:
    """One row per rule: what it matches, what is held back, what it would act on."""
    counts = ("matched", "held", "retained", "blocked", "done", "no date", "would act on")
    listing = Listing("Retention plan (dry run: nothing was changed)",
                      ("rule", "store.table", "action", "cutoff", *counts, "brake"),
                      numbers=frozenset(counts))
    for plan in plans:
        census = plan.census
        where = f"{plan.rule.store}.{plan.rule.table}"
        cut = stamp(plan.cutoff)
        if census is None:
            listing.add(plan.rule.id, where, plan.rule.action.type, cut,
                        *(["-"] * len(counts)), Text("error", style="bold red"))
            continue
        brake = Text(f"stops: {plan.stopped_by.limit}", style="bold yellow") if plan.stopped_by \
            else Text("ok", style="green")
        listing.add(plan.rule.id, where, plan.rule.action.type, cut, _count(census.matched),
                    _count(census.held), _count(census.protected), _count(census.blocked),
                    _count(census.done), _count(census.null_age),
                    Text(_count(census.eligible), style="bold"), brake)
    return listing


def _related_words(age: Age) -> str:
    """Where an age from related rows comes from, and what no related rows mean."""
    related = age.related
    if related is None:
        return str(age.column)
    hops = " -> ".join(f"{hop.table}({', '.join(hop.via)})" for hop in related.path)
    none = ("are due" if age.when_none == "act" else "are kept" if age.when_none == "keep"
            else f"are aged on {age.when_none.use}")
    return (f"from related rows: the {related.take} {related.table}.{related.column} "
            f"via {hops}; rows with none {none}")


def _age_name(age: Age) -> str:
    """What the rows with no age lack."""
    related = age.related
    if related is None:
        return f"no {age.column} (a missing date keeps the record)"
    undated = f"a related {related.table} row with no {related.column}"
    if age.when_none == "act":
        return f"{undated} (doubt keeps the record)"
    if age.when_none == "keep":
        return f"no {related.table} rows, or {undated} (doubt keeps the record)"
    return (f"no {related.table} rows and no {age.when_none.use}, or {undated} "
            "(doubt keeps the record)")


def plan_details(plan: RulePlan) -> Group:
    """Everything else one rule's plan says: promise, action, guards, reach, samples, brake."""
    lines: list[Text] = [Text(f"{plan.rule.id}", style="bold"),
                         Text(f"  promise: {plan.rule.description}"),
                         Text(f"  does:    {plan.action}")]
    if plan.rule.age.related is not None:
        lines.append(Text(f"  age:     {_related_words(plan.rule.age)}"))
    if plan.error:
        lines.append(Text(f"  error:   {plan.error} (nothing would be done)", style="red"))
        return Group(*lines)
    for guard in plan.guards:
        if guard.kind == "blocker":
            lines.append(Text(f"  {_rows(guard.rows)} blocked: {guard.id}"))
            continue
        if guard.kind == "restore":
            lines.append(Text(f"  exempt:  {_count(guard.rows)} rows {guard.reason}"))
            continue
        label = "held by" if guard.kind == "hold" else "retained by"
        lines.append(Text(f"  {label} {guard.id}: {_count(guard.rows)} rows ({guard.reason})"))
    if plan.census and plan.census.done:
        lines.append(Text(f"  done:    {_count(plan.census.done)} rows need no change "
                          "(already rewritten, or nothing to rewrite)"))
    if plan.census and plan.census.null_age:
        lines.append(Text(f"  kept:    {_count(plan.census.null_age)} rows have "
                          f"{_age_name(plan.rule.age)}"))
    lines.extend(Text(f"  reaches: {_rows(r.rows)} of {r.table} {_reach_words(r)}, "
                      f"of {_count(r.population)}") for r in plan.reached)
    if plan.samples:
        lines.append(Text("  sample keys: " + ", ".join(_key(k) for k in plan.samples)))
    if plan.stopped_by:
        lines.append(Text(f"  brake:   {plan.stopped_by}", style="yellow"))
    return Group(*lines)
