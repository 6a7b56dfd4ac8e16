"""What retentiond publishes: the retention schedule, and the review report of its ledger."""

from retentiond.publish.report import (
    CheckpointStatus,
    Report,
    Window,
    build_report,
    collect,
    render_report,
)
from retentiond.publish.schedule import (
    RetentionSchedule,
    build_schedule,
    read_state,
    render,
    state_holds,
)

__all__ = [
    "CheckpointStatus",
    "Report",
    "RetentionSchedule",
    "Window",
    "build_report",
    "build_schedule",
    "collect",
    "read_state",
    "render",
    "render_report",
    "state_holds",
]
