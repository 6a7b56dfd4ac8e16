"""Prometheus metrics of the daemon: off unless ``[daemon] metrics_port`` is set.

Served on 127.0.0.1 only: numbers about personal-data handling are not for the network.
Labels are rule ids and action names, never values.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from retentiond.policy.model import Rule
    from retentiond.run.enforce import RuleReport


class Metrics:
    """The daemon's counters, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.acted = Counter("retentiond_records_acted_total", "Records acted on",
                             ["rule", "action"], registry=self.registry)
        self.held = Gauge("retentiond_records_held", "Records held back at the last run",
                          ["rule"], registry=self.registry)
        self.blocked = Gauge("retentiond_records_blocked", "Records blocked at the last run",
                             ["rule"], registry=self.registry)
        self.duration = Histogram("retentiond_run_seconds", "Duration of rule runs", ["rule"],
                                  registry=self.registry)
        self.errors = Counter("retentiond_run_errors_total", "Rule runs that failed", ["rule"],
                              registry=self.registry)
        self.success = Gauge("retentiond_last_success_timestamp_seconds",
                             "When the rule last completed", ["rule"], registry=self.registry)

    def serve(self, port: int) -> None:
        """Expose the metrics on http://127.0.0.1:PORT/metrics."""
        start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def ran(self, rule: Rule, report: RuleReport, seconds: float) -> None:
        """Count a finished run."""
        self.acted.labels(rule.id, rule.action.type).inc(report.acted)
        self.duration.labels(rule.id).observe(seconds)
        if report.census is not None:
            self.held.labels(rule.id).set(report.census.held)
            self.blocked.labels(rule.id).set(report.census.blocked)
        if report.status == "done":
            self.success.labels(rule.id).set(time.time())

    def failed(self, rule: str) -> None:
        """Count a failed run."""
        self.errors.labels(rule).inc()
