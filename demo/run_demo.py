"""`make demo`: build the demo store, validate the example policies, show the plan.

Everything goes through the real CLI, exactly as an operator would type it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from retentiond.demo import build_demo_store

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
    """Build, validate, plan."""
    shutil.rmtree(WORK, ignore_errors=True)
    summary = build_demo_store(WORK / "app.db", now=datetime.now(tz=UTC))
    print(f"demo store {WORK / 'app.db'}: {summary}")
    retentiond("validate")
    retentiond("plan")


if __name__ == "__main__":
    main()
