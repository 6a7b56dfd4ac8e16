"""Prometheus metrics of the daemon: off unless ``[daemon] metrics_port`` is set.

Served on 127.0.0.1 only: numbers about personal-data handling are not for the network.
Labels are rule ids, action names and error classes, never values.

``retentiond_last_run_failed`` is read from the ledger when scraped: it tells of every run,
the daemon's and an operator's ``run --once`` alike, and of a run whose end waits for the
state database (then from the daemon's memory).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from retentiond.errors import RetentionError

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from prometheus_client.metrics_core import Metric

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
        self.errors = Counter("retentiond_run_errors_total", "Rule runs that failed",
                              ["rule", "error"], registry=self.registry)
        self.success = Gauge("retentiond_last_success_timestamp_seconds",
                             "When the rule last completed", ["rule"], registry=self.registry)
        self.last_runs: Callable[[], Mapping[str, Mapping[str, Any]]] = dict
        """Each rule's latest ``run.end`` body; set by the daemon (asked at each scrape)."""
        self.registry.register(_LastRuns(self))

        self._server: WSGIServer | None = None

    def serve(self, port: int) -> None:
        """Expose the metrics on http://127.0.0.1:PORT/metrics."""
        self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)

    def close(self) -> None:
        """Stop serving (and free the port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ran(self, rule: Rule, report: RuleReport, seconds: float) -> None:
        """Count a finished run."""
        self.acted.labels(rule.id, rule.action.type).inc(report.acted)
        self.duration.labels(rule.id).observe(seconds)
        if report.census is not None:
            self.held.labels(rule.id).set(report.census.held)
            self.blocked.labels(rule.id).set(report.census.blocked)
        if report.status == "done":
            self.success.labels(rule.id).set(time.time())

    def failed(self, rule: str, error: str) -> None:
        """Count a failed run, by the class of the error that ended it."""
        self.errors.labels(rule, error).inc()


class _LastRuns(Collector):
    """``retentiond_last_run_failed{rule, error}``: 1 when the rule's latest run failed."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """One sample per rule that has run; none while the ledger cannot be read."""
        family = GaugeMetricFamily("retentiond_last_run_failed",
                                   "Whether the rule's latest run failed (1), by error class",
                                   labels=["rule", "error"])
        try:
            ends = self._metrics.last_runs()
        except RetentionError:
            ends = {}
        for rule, body in sorted(ends.items()):
            failed = body.get("status") == "failed"
            family.add_metric([rule, str(body.get("error_class") or "") if failed else ""],
                              1.0 if failed else 0.0)
        yield family
