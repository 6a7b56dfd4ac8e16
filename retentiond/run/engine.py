"""Plan (and, with the write path, enforce) one rule over one store.

The engine knows nothing of scheduling or printing.  The selection a plan counts is built by
the same :meth:`Engine.selection` that enforcement uses, with the cutoff fixed once per run,
so a dry run shows exactly what the real run would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from retentiond.actions import action_for
from retentiond.errors import LimitExceeded, RetentionError, SchemaChanged, redact
from retentiond.holds.exemptions import Exemption
from retentiond.holds.guards import HoldSource, PolicyHolds, guards_for
from retentiond.policy.model import Hold, PolicySet, Retention, Rule
from retentiond.policy.order import ordered
from retentiond.policy.periods import cutoff
from retentiond.run.reach import Reaches, reaches_of
from retentiond.settings import Defaults
from retentiond.stores.base import (
    AgeBound,
    Census,
    Guard,
    Key,
    Reach,
    Reached,
    RelatedAge,
    Selection,
    Store,
    TableSchema,
)
from retentiond.stores.registry import Stores
from retentiond.validation import check_rule, related_path

log = structlog.get_logger("retentiond.run.engine")

SAMPLE_KEYS = 5


@dataclass(frozen=True)
class Brakes:
    """The most a rule may act on in one run: both limits apply, to every table it changes."""

    max_rows: int
    max_percent: float

    def check(self, rule: str, selected: int, population: int,
              table: str | None = None) -> LimitExceeded | None:
        """The brake that ``selected`` of ``population`` rows would trip, or None."""
        if selected > self.max_rows:
            return LimitExceeded(rule, "max_rows", self.max_rows, selected, population,
                                 table=table)
        if population and selected * 100 > self.max_percent * population:
            return LimitExceeded(rule, "max_percent", self.max_percent, selected, population,
                                 table=table)
        return None

    def check_all(self, rule: str, census: Census,
                  reached: Sequence[Reached]) -> LimitExceeded | None:
        """The first brake tripped by the rule's own rows or by the rows it reaches per table.

        A row set NULL changes as much as a row deleted: both count.
        """
        exceeded = self.check(rule, census.eligible, census.population)
        changed: dict[str, int] = {}
        population: dict[str, int] = {}
        for effect in reached:
            changed[effect.table] = changed.get(effect.table, 0) + effect.rows
            population[effect.table] = effect.population
        for table, rows in changed.items():
            exceeded = exceeded or self.check(rule, rows, population[table], table=table)
        return exceeded


@dataclass(frozen=True)
class GuardCount:
    """How many matched records one hold or minimum retention protects."""

    kind: str
    """``hold``, ``retention``, ``blocker``, or ``restore`` (restored rows exempt from the rule)."""
    id: str
    reason: str
    rows: int
    until: str | None = None
    """When a ``restore`` exemption ends (ISO date or time)."""


@dataclass(frozen=True)
class Reaching:
    """Per (store, table): the rules whose removals reach it and how; stores not read."""

    rules: Mapping[tuple[str, str], Sequence[tuple[Rule, tuple[str, ...]]]]
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A rule made concrete against its live table at one moment."""

    selection: Selection
    reaches: tuple[Reach, ...]
    table: TableSchema


@dataclass(frozen=True)
class RulePlan:
    """Everything a dry run knows about one rule; ``error`` set when it could not be planned."""

    rule: Rule
    as_of: datetime
    cutoff: datetime
    action: str
    census: Census | None = None
    guards: tuple[GuardCount, ...] = ()
    samples: tuple[Key, ...] = ()
    reached: tuple[Reached, ...] = ()
    """Rows of other tables the removal deletes or nulls, per table and effect, distinct."""
    brakes: Brakes | None = None
    stopped_by: LimitExceeded | None = None
    error: str | None = None


class Engine:
    """Plans and enforces rules of one policy set against the configured stores."""

    def __init__(
        self,
        policies: PolicySet,
        stores: Stores,
        defaults: Defaults,
        hold_sources: Sequence[HoldSource] = (),
    ) -> None:
        self.policies = policies
        self.stores = stores
        self.defaults = defaults
        self.hold_sources: tuple[HoldSource, ...] = (PolicyHolds(policies), *hold_sources)

    def selection(self, rule: Rule, *, as_of: datetime) -> Selection:
        """The records ``rule`` may act on at ``as_of``: age, filter, guards, blockers, pending.

        Enforcement calls this again before every batch (with the same ``as_of``, so the
        cutoff stays fixed for the run), so that a hold placed meanwhile is honoured.
        """
        return self.prepared(rule, as_of=as_of).selection

    def prepared(self, rule: Rule, *, as_of: datetime) -> Prepared:
        """The selection together with the foreign-key reach of a removal."""
        store = self.stores.get(rule.store)
        table = store.schema(rule.table)
        if table is None:
            raise SchemaChanged(rule.store, f"table {rule.table!r} no longer exists",
                                "run 'retentiond validate'")
        problems = check_rule(rule, table)
        if problems:
            raise SchemaChanged(rule.store, f"table {rule.table!r} changed since the rule was "
                                f"validated: {problems[0]}", "run 'retentiond validate'")
        action = action_for(rule.action)
        bound = self._bound(rule, store, as_of)

        def guards_of(name: str) -> tuple[Guard, ...]:
            return self.guards(rule.store, name, as_of=as_of)

        reach = Reaches()
        if action.removes_rows:
            reach = reaches_of(store, rule.table, guards_of=guards_of, moving=action.moves_rows,
                               delete_children=action.deletes_children())
        exempt = tuple(e.guard(table) for e in self.exemptions(rule, as_of=as_of).values())
        selection = Selection(table=rule.table, age=bound, where=rule.where,
                              guards=(*guards_of(rule.table), *exempt), blockers=reach.blockers,
                              pending=action.pending(table, rule.id))
        return Prepared(selection=selection, reaches=reach.reaches, table=table)

    @staticmethod
    def _bound(rule: Rule, store: Store, as_of: datetime) -> AgeBound:
        """The rule's age at ``as_of``: its own column, or the foreign keys to related rows."""
        moment = cutoff(rule.age.older_than, as_of, rule.age.timezone)
        related = rule.age.related
        if related is None:
            return AgeBound(str(rule.age.column), moment)
        path, problems = related_path(store, rule.table, related)
        if problems or not path:
            what = problems[0][1] if problems else "no path to the related rows"
            raise SchemaChanged(rule.store, f"the related rows of rule {rule.id!r} changed "
                                f"since it was validated: {what}", "run 'retentiond validate'")
        none = rule.age.when_none
        return AgeBound(related.column, moment, related=RelatedAge(
            path, related.column, take=related.take,
            when_none="act" if none == "act" else "keep",
            fallback=None if isinstance(none, str) else none.use))

    def guards(self, store: str, table: str, *, as_of: datetime) -> tuple[Guard, ...]:
        """Every hold and minimum retention protecting rows of ``store.table`` at ``as_of``."""
        return guards_for(self.policies, self.hold_sources, store=store, table=table,
                          as_of=as_of, partitions=self.stores.get(store).partitions())

    def exemptions(self, rule: Rule, *, as_of: datetime) -> dict[str, Exemption]:
        """Rows restored from quarantine that ``rule`` must leave alone at ``as_of``, by guard id.

        Only the rule that quarantined them is bound: other rules on the table see them.
        """
        return {e.guard_id: e for source in self.hold_sources
                for e in source.exemptions(rule.store, rule.table, rule.id, as_of)}

    def guarding(self, store: str, table: str, *, as_of: datetime,
                 ) -> tuple[dict[str, Hold], dict[str, Retention]]:
        """The holds and minimum retentions behind :meth:`guards`, by id, with their reasons.

        A partitioned table's may be placed on its partitions: each one is read too.
        """
        names = [name for name, _ in self.stores.get(store).partitions().scopes(table)]
        holds = {hold.id: hold for source in self.hold_sources for name in names
                 for hold in source.active(store, name, as_of)}
        retentions = {r.id: r for name in names for r in self.policies.retentions_on(store, name)}
        return holds, retentions

    def reaching(self, *, as_of: datetime, store: str | None = None) -> Reaching:
        """Which tables the enabled rules' removals reach through foreign keys, and how.

        A store that cannot be read is listed in ``unknown`` (and logged), not raised: what
        asks (the schedule, explain) says so and carries on.
        """
        found: dict[tuple[str, str], list[tuple[Rule, tuple[str, ...]]]] = {}
        unknown: list[str] = []
        for rule in self.rules():
            if rule.store in unknown or store not in {None, rule.store}:
                continue
            try:
                reaches = self.prepared(rule, as_of=as_of).reaches
            except RetentionError as exc:
                unknown.append(rule.store)
                log.warning("reach.unknown", store=rule.store, error=redact(str(exc)))
                continue
            ways: dict[str, set[str]] = {}
            for reach in reaches:
                ways.setdefault(reach.path[-1].table, set()).add(reach.effect)
            for table, effects in ways.items():
                found.setdefault((rule.store, table), []).append((rule, tuple(sorted(effects))))
        return Reaching(found, tuple(unknown))

    def brakes(self, rule: Rule) -> Brakes:
        """The rule's limits, unset ones taken from the defaults (never off)."""
        return Brakes(
            max_rows=rule.limits.max_rows or self.defaults.max_rows,
            max_percent=rule.limits.max_percent or self.defaults.max_percent,
        )

    def batch_size(self, rule: Rule) -> int:
        """Rows per batch (and per transaction) for ``rule``."""
        return rule.batch_size or self.defaults.batch_size

    def plan(self, rule: Rule, *, as_of: datetime, samples: int = SAMPLE_KEYS) -> RulePlan:
        """What ``rule`` would do at ``as_of``, read in one read-only transaction."""
        words = action_for(rule.action).describe()
        moment = cutoff(rule.age.older_than, as_of, rule.age.timezone).aware
        bound = log.bind(rule=rule.id, store=rule.store, table=rule.table)
        try:
            prepared = self.prepared(rule, as_of=as_of)
            selection = prepared.selection
            store = self.stores.get(rule.store)
            with store.reader() as reader:
                census = reader.census(selection)
                keys = tuple(reader.keys(selection, after=None, limit=samples)) if samples else ()
                reached = reader.reached(selection, prepared.reaches)
        except RetentionError as exc:
            bound.warning("plan.failed", error=redact(str(exc)))
            return RulePlan(rule=rule, as_of=as_of, cutoff=moment, action=words, error=str(exc))
        brakes = self.brakes(rule)
        guards = tuple(self._guard_counts(rule, selection, census, as_of))
        plan = RulePlan(
            rule=rule, as_of=as_of, cutoff=moment, action=words, census=census,
            guards=guards, samples=keys, reached=reached, brakes=brakes,
            stopped_by=brakes.check_all(rule.id, census, reached),
        )
        bound.info("plan.done", matched=census.matched, eligible=census.eligible,
                   held=census.held, protected=census.protected, null_age=census.null_age)
        return plan

    def plan_all(
        self,
        *,
        as_of: datetime,
        rule_ids: Iterable[str] | None = None,
        progress: Callable[[Rule], None] | None = None,
    ) -> list[RulePlan]:
        """Plans for the selected (or all enabled) rules, in the order they run."""
        plans = []
        for rule in self.rules(rule_ids):
            if progress is not None:
                progress(rule)
            plans.append(self.plan(rule, as_of=as_of))
        return plans

    def rules(self, rule_ids: Iterable[str] | None = None) -> list[Rule]:
        """The named rules (KeyError for an unknown id), or every enabled rule: in run order.

        The order is :func:`~retentiond.policy.order.ordered`, the daemon's too.
        """
        if rule_ids is None:
            wanted = {rule.id for rule in self.policies.rules if rule.enabled}
        else:
            wanted = {self.policies.rule(rule_id).id for rule_id in rule_ids}
        return [rule for rule in ordered(self.policies.rules) if rule.id in wanted]

    def _guard_counts(
        self, rule: Rule, selection: Selection, census: Census, as_of: datetime,
    ) -> Iterable[GuardCount]:
        holds, retentions = self.guarding(rule.store, rule.table, as_of=as_of)
        reasons = {hold_id: hold.reason for hold_id, hold in holds.items()}
        reasons.update({r_id: r.reason for r_id, r in retentions.items()})
        exempt = self.exemptions(rule, as_of=as_of)
        for guard in selection.guards:
            rows = census.by_guard.get(guard.id, 0)
            found = exempt.get(guard.id)
            if found is not None:
                yield GuardCount("restore", guard.id, found.describe(), rows,
                                 found.until.isoformat())
                continue
            yield GuardCount(guard.kind, guard.id, reasons.get(guard.id, ""), rows)
        for blocker in selection.blockers:
            yield GuardCount("blocker", blocker.id, "", census.by_guard.get(blocker.id, 0))
