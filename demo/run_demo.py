"""`make demo`: build the demo store, validate the example policies, plan, enforce, review.

Everything goes through the real CLI, exactly as an operator would type it.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from demo_store import build_demo_store

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
CONFIG = ROOT / "demo" / "retentiond.toml"


def retentiond(*args: str) -> None:
    """Run one CLI command from the repository root; stop the demo if it fails."""
    command = [sys.executable, "-m", "retentiond", "--config", str(CONFIG), *args]
    print(f"\n$ retentiond {' '.join(args)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, check=False)  # noqa: S603 - our own CLI
    if result.returncode != 0:
        sys.exit(result.returncode)


def main() -> None:
    """Build, validate, plan, enforce, summarize from the audit log, verify the chain."""
    shutil.rmtree(WORK, ignore_errors=True)
    summary = build_demo_store(WORK / "app.db", now=datetime.now(tz=UTC))
    (WORK / "pseudonym.key").write_text(secrets.token_urlsafe(48), encoding="utf-8")
    print(f"demo store {WORK / 'app.db'}: {summary}")
    retentiond("audit", "keygen", "--out", str(WORK / "keys"))
    retentiond("validate")
    retentiond("plan")
    retentiond("run", "--once")
    retentiond("audit", "summary")
    retentiond("audit", "verify")
    retentiond("audit", "report", "--output", str(WORK / "report.html"))
    retentiond("schedule", "--format", "md", "--output", str(WORK / "schedule.md"))
    print(f"\nopen {WORK / 'report.html'} for the review report; "
          f"{WORK / 'schedule.md'} is the published retention schedule")


if __name__ == "__main__":
    main()
