"""How long ``retentiond validate`` takes for 100, 500 and 2,000 rules: it must grow linearly.

The rules are distinct and realistic: spread over several tables of one SQLite store, each
narrowed to one customer, in threes that escalate on the same records (anonymize the email at
6 months, mask the subject at 12, delete at 24), with a few holds and retentions.  Each size is
written as one policy file (``--files N`` splits it), then ``validate --offline`` (phase one:
the files alone) and ``validate`` (both phases: every rule against the live tables) run
in-process through the CLI's ``main``, ``--rounds`` times, interleaved; the median is reported
with the ratio to the smallest size per rule.  ``--profile`` writes a cProfile of the largest
size's full validate to ``bench/results/validate_rules.prof`` and prints its top functions.

    .venv/bin/python bench/validate_rules.py
    .venv/bin/python bench/validate_rules.py --sizes 100,500,2000,4000 --rounds 5 --profile
    .venv/bin/python bench/validate_rules.py --same-records
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from contextlib import closing, redirect_stderr, redirect_stdout
from pathlib import Path

import structlog

from retentiond.cli import main

TABLES = 8
RESULTS = Path(__file__).resolve().parent / "results"
DDL = """CREATE TABLE {name} (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
    email VARCHAR(200), subject VARCHAR(200), created_at DATETIME NOT NULL)"""
STEPS = (
    ("6 months", "{type: anonymize, columns: {email: {strategy: constant, value: x}}}"),
    ("12 months", "{type: anonymize, columns: {subject: {strategy: mask, keep_last: 2}}}"),
    ("24 months", "{type: delete}"),
)


def rule(number: int) -> str:
    """The YAML of rule ``number``: its table, its customer, its step of three."""
    customer, step = divmod(number, len(STEPS))
    period, action = STEPS[step]
    return (f"  - id: rule-{number:05d}\n"
            f"    description: Step {step} for customer {customer}.\n"
            f"    store: app\n"
            f"    table: t{customer % TABLES}\n"
            f"    where: {{column: customer_id, value: {customer}}}\n"
            f"    age: {{column: created_at, older_than: {period}}}\n"
            f"    action: {action}\n")


def own_column(number: int) -> str:
    """The YAML of rule ``number`` of ``--same-records``: all on t0, each its own column."""
    return (f"  - id: rule-{number:05d}\n"
            f"    description: Column c{number} is blanked.\n"
            f"    store: app\n"
            f"    table: t0\n"
            f"    age: {{column: created_at, older_than: {number % 30 + 100} days}}\n"
            f"    action: {{type: anonymize, columns: {{c{number}: "
            f"{{strategy: constant, value: x}}}}}}\n")


def policy_text(rules: range, *, same_records: bool = False) -> str:
    """One policy file holding ``rules``, with a hold and a retention on every table."""
    lines = ["rules:\n", *((own_column if same_records else rule)(n) for n in rules)]
    if rules.start == 0:
        lines.append("holds:\n")
        lines.extend(f"  - id: hold-{t}\n    reason: A complaint.\n    store: app\n"
                     f"    table: t{t}\n    where: {{column: customer_id, value: 4711}}\n"
                     for t in range(TABLES))
        lines.append("retain:\n")
        lines.extend(f"  - id: keep-{t}\n    reason: Tax law.\n    store: app\n"
                     f"    table: t{t}\n    column: created_at\n    for: 3 months\n"
                     for t in range(TABLES))
    return "".join(lines)


def make_site(root: Path, size: int, files: int, *, same_records: bool) -> Path:
    """A store, a policy directory of ``size`` rules in ``files`` files, and a config."""
    store = root / "app.db"
    with closing(sqlite3.connect(store)) as connection, connection:
        for table in range(TABLES):
            connection.execute(DDL.format(name=f"t{table}"))

    policies = root / "policies"
    policies.mkdir()
    per_file = -(-size // files)
    for index, start in enumerate(range(0, size, per_file)):
        text = policy_text(range(start, min(start + per_file, size)), same_records=same_records)
        (policies / f"rules-{index:03d}.yaml").write_text(text, encoding="utf-8")
    config = root / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{root}/state.db"\n'
                      f'log_level = "warning"\n[stores.app]\nurl = "sqlite:///{store}"\n',
                      encoding="utf-8")
    return config


def validate(config: Path, *args: str) -> float:
    """Seconds one ``retentiond --config CONFIG validate ARGS`` takes in this process."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["retentiond", "--config", str(config), "validate", *args]
    started = time.perf_counter()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            main()
    except SystemExit as exc:
        if exc.code:
            raise RuntimeError(f"validate failed: {err.getvalue()[-2000:]}") from None
    finally:
        sys.argv = saved
        structlog.reset_defaults()
    elapsed = time.perf_counter() - started
    if not out.getvalue().startswith("ok: "):
        raise RuntimeError(f"validate said: {out.getvalue()} {err.getvalue()[-2000:]}")
    return elapsed


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,500,2000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=1, help="policy files per size")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--same-records", action="store_true",
                        help="every rule on the same records (t0, no filter), each anonymizing "
                             "its own column: no two can contradict, none may be compared")
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    modes = {"offline": ("--offline",), "full": ()}
    if options.same_records:  # SQLite tables have at most 2,000 columns: phase one only
        del modes["full"]
    last = list(modes)[-1]
    times: dict[tuple[int, str], list[float]] = {(s, m): [] for s in sizes for m in modes}
    with tempfile.TemporaryDirectory() as temporary:
        configs = {}
        for size in sizes:
            root = Path(temporary) / str(size)
            root.mkdir()
            configs[size] = make_site(root, size, options.files,
                                      same_records=options.same_records)
        validate(configs[sizes[0]], *modes[last])  # imports and first-use caches out of the way
        for _ in range(options.rounds):
            for size in sizes:
                for mode, args in modes.items():
                    times[size, mode].append(validate(configs[size], *args))
        if options.profile:
            RESULTS.mkdir(exist_ok=True)
            profiler = cProfile.Profile()
            profiler.enable()
            validate(configs[sizes[-1]], *modes[last])
            profiler.disable()
            target = RESULTS / "validate_rules.prof"
            profiler.dump_stats(target)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
            print(f"profile: {target}")
    print(f"load average {os.getloadavg()[0]:.1f}; median of {options.rounds} rounds, seconds")
    print(f"{'rules':>6} {'offline':>8} {'full':>8} {last + ' per rule vs smallest':>26}")
    base = statistics.median(times[sizes[0], last]) / sizes[0]
    for size in sizes:
        offline = statistics.median(times[size, "offline"])
        full = statistics.median(times[size, "full"]) if "full" in modes else math.nan
        ratio = statistics.median(times[size, last]) / size / base
        print(f"{size:>6} {offline:>8.2f} {full:>8.2f} {ratio:>26.2f}")


if __name__ == "__main__":
    main_bench()
