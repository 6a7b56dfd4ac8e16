"""The daemon: rules on their schedules, signals, and what systemd and Prometheus see.

- :mod:`~retentiond.daemon.service`: the long-running service (start, serve, reload on
  SIGHUP, stop on SIGTERM), which hands every run to :mod:`retentiond.run`.
- :mod:`~retentiond.daemon.triggers`: when a rule fires (cron or interval, run windows, runs
  missed while it was down).
- :mod:`~retentiond.daemon.notify`: systemd's sd_notify protocol (ready, status, watchdog).
- :mod:`~retentiond.daemon.metrics`: the optional Prometheus endpoint.
"""
