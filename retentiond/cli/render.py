"""Plans as people read them (rich tables) and as scripts read them (JSON-ready dicts).

Nothing here prints; the CLI decides where output goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from retentiond.ledger.chain import jsonable
from retentiond.run.engine import RulePlan
from retentiond.stores.base import Key, Reached


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


def plan_table(plans: Sequence[RulePlan]) -> Table:
    """One row per rule: what it matches, what is held back, what it would act on."""
    table = Table(title="Retention plan (dry run: nothing was changed)", title_justify="left")
    table.add_column("rule", no_wrap=True)
    table.add_column("store.table", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("cutoff (UTC)", no_wrap=True)
    for name in ("matched", "held", "retained", "blocked", "done", "no date", "would act on"):
        table.add_column(name, justify="right", min_width=8)
    table.add_column("brake", no_wrap=True)
    for plan in plans:
        census = plan.census
        where = f"{plan.rule.store}.{plan.rule.table}"
        cut = plan.cutoff.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        if census is None:
            table.add_row(plan.rule.id, where, plan.rule.action.type, cut,
                          *(["-"] * 7), Text("error", style="bold red"))
            continue
        brake = Text(f"stops: {plan.stopped_by.limit}", style="bold yellow") if plan.stopped_by \
            else Text("ok", style="green")
        table.add_row(plan.rule.id, where, plan.rule.action.type, cut, _count(census.matched),
                      _count(census.held), _count(census.protected), _count(census.blocked),
                      _count(census.done), _count(census.null_age),
                      Text(_count(census.eligible), style="bold"), brake)
    return table


def plan_details(plan: RulePlan) -> Group:
    """Everything else one rule's plan says: promise, action, guards, reach, samples, brake."""
    lines: list[Text] = [Text(f"{plan.rule.id}", style="bold"),
                         Text(f"  promise: {plan.rule.description}"),
                         Text(f"  does:    {plan.action}")]
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
        lines.append(Text(f"  kept:    {_count(plan.census.null_age)} rows have no "
                          f"{plan.rule.age.column} (a missing date keeps the record)"))
    lines.extend(Text(f"  reaches: {_rows(r.rows)} of {r.table} {_reach_words(r)}, "
                      f"of {_count(r.population)}") for r in plan.reached)
    if plan.samples:
        lines.append(Text("  sample keys: " + ", ".join(_key(k) for k in plan.samples)))
    if plan.stopped_by:
        lines.append(Text(f"  brake:   {plan.stopped_by}", style="yellow"))
    return Group(*lines)
