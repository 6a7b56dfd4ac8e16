"""Hostile policy files: each is one error line from ``validate``, exit 2, no traceback, no hang.

These are the files that, tried from outside, gave a traceback or hung (issue 15, item 9), and
those that passed ``validate`` and then failed in ``plan``, ``run`` and the daemon's jobs: the
error now comes from ``validate``, naming the file, the line and the limit.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

RULE = """\
rules:
  - id: r1
    description: Emails go after a while.
    store: app
    table: emails
    age: {{column: sent_at, older_than: {period}{zone}}}
    action: {{type: delete}}
"""
ROW = RULE.format(period="1 day", zone="")
BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]\n" for n in range(1, 8)) + "rules: []\n"

HOSTILE = {
    "not UTF-8": (b"rules:\n  - id: r\xff1\n", 2, "not UTF-8 text (byte 0xff)"),
    "3,000 nested nots": (
        (ROW + "    where: " + "{not: " * 3000 + "{column: id, value: 1}" + "}" * 3000 + "\n"
         ).encode(), 8, "nested deeper than 64 levels"),
    "a python tag": (b"rules: !!python/object/apply:os.system ['true']\n", 1,
                     "the YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not "
                     "allowed"),
    "an alias bomb": (BOMB.encode(), 6, "stands for more than 200,000 values"),
    "a 70,000-character timezone": (
        RULE.format(period="1 day", zone=", timezone: " + "A" * 70000).encode(), 6,
        "unknown timezone 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'..."),
    "10,000 years": (RULE.format(period="10000 years", zone="").encode(), 6,
                     "'10000 years' is longer than 1000 years"),
    "10^20 years": (RULE.format(period="1" + "0" * 20 + " years", zone="").encode(), 6,
                    "is longer than 1000 years"),
    "an integer beyond 64 bits": (
        (ROW + "    where: {column: customer_id, value: 10000000000000000000}\n").encode(), 8,
        "an integer value is beyond the 64-bit range"),
    "a 70,000-value list": (
        (ROW + "    where: {column: customer_id, op: in, value: ["
         + ", ".join(str(i) for i in range(70000)) + "]}\n").encode(), 8,
        "70,000 values in one list, over the limit of 1,000"),
    "a control character": (b"rules:\n  - id: r\x07\n", 2,
                            "the character U+0007 is not allowed in YAML text"),
    "a duplicate key of 729 aliased values": (
        b"rules:\nrules:\n- &b\n  - &a [x, x, x, x, x, x, x, x, x]\n"
        + b"  - *a\n" * 8 + b"- *b\n" * 8, 2, "found duplicate key 'rules'; remove or rename"),
    "a 70,000-character id": (
        RULE.format(period="1 day", zone="").replace("r1", "R" * 70000).encode(), 2,
        "rule #1: id: '" + "R" * 60 + "... is not an id"),
    "an id with a line break and a terminal escape": (
        RULE.format(period="1 day", zone="").replace("r1", '"a\\nb\\e[31m"').encode(), 2,
        "rule #1: id: 'a\\nb\\x1b[31m' is not an id"),
    "a key with a line break and a terminal escape": (
        (ROW + '    subjects: {"k\\n\\e[31m": "bad col"}\n').encode(), 8,
        "r1: k \\x1b[31m: 'bad col' is not a plain identifier"),
    "a 70,000-character value for an integer column": (
        (ROW + f'    where: {{column: customer_id, value: "{"A" * 70000}"}}\n').encode(), 8,
        "r1: '" + "A" * 60 + "... is not a"),
    "a mapping as a mapping key": (
        b"? {rules: [{action: {type: delete}, id: r1}]}\n", 1,
        "a list or mapping is used as a mapping key"),
    "an alias of a list as a mapping key": (
        b"rules:\n- &k [x]\n- {*k : 1}\n", 3, "a list or mapping is used as a mapping key"),
    "a file over 1 MiB": ((ROW + "#" * (1024 * 1024) + "\n").encode(), None,
                          "over the limit of 1,048,576"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_policy_file_is_one_error_line_and_exit_2(tmp_path, name):
    """Validate refuses the file in one line naming file, line and limit; nothing else runs."""
    content, line, what = HOSTILE[name]
    store = tmp_path / "app.db"
    with sqlite3.connect(store) as conn:
        conn.execute("CREATE TABLE emails (id INTEGER PRIMARY KEY, customer_id INTEGER, "
                     "sent_at DATETIME)")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "hostile.yaml").write_bytes(content)
    config = tmp_path / "retentiond.toml"
    config.write_text(f'policy_dir = "{policies}"\nstate_url = "sqlite:///{tmp_path}/state.db"\n'
                      f'[stores.app]\nurl = "sqlite:///{store}"\n')

    result = subprocess.run([sys.executable, "-m", "retentiond", "--config", str(config),
                             "validate"], capture_output=True, text=True, timeout=60,
                            check=False)

    errors = [row for row in result.stderr.splitlines() if row.startswith("error:")]
    where = f"{policies / 'hostile.yaml'}" + (f":{line}" if line else "")
    assert (2, 1) == (result.returncode, len(errors)), result.stderr[-2000:]
    assert errors[0].startswith(f"error: {where}: "), errors[0][:300]
    assert what in errors[0]
    assert len(errors[0]) < 1000
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "state.db").exists()
