"""What the wheel carries: the code, its LICENSE in the metadata, and what an operator installs.

The unit file, the example config, the PostgreSQL grants, the deploy guide and the example
policies ship as the wheel's shared data and land in ``<prefix>/share/retentiond/``
(deploy/README.md, "Files the package installs").  The wheel is built as an operator builds
it (``pip wheel .``; pip fetches the build backend, hatchling, from the configured index) and
installed into a new virtualenv of the test (never into the one running the tests).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = {
    "retentiond.service": ROOT / "deploy" / "retentiond.service",
    "retentiond.toml": ROOT / "deploy" / "retentiond.toml",
    "state-roles.sql": ROOT / "deploy" / "state-roles.sql",
    "README.md": ROOT / "deploy" / "README.md",
    **{f"policies/{p.name}": p for p in sorted((ROOT / "policies").glob("*.yaml"))},
}
"""Each file under share/retentiond/, and the file of the repository it is a copy of."""

FIND = ("import sysconfig, pathlib; "
        "print(pathlib.Path(sysconfig.get_path('data'), 'share', 'retentiond'))")
"""deploy/README.md's command that prints where the shared files are."""

pytestmark = pytest.mark.slow


def _pip(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=300, check=False)
    assert 0 == done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel of this checkout, built by pip (no dependencies)."""
    directory = tmp_path_factory.mktemp("wheel")
    _pip("wheel", str(ROOT), "--no-deps", "--quiet", "--wheel-dir", str(directory))
    (built,) = directory.glob("retentiond-*.whl")
    return built


def _name(wheel: Path) -> str:
    name, version, *_ = wheel.name.split("-")
    return f"{name}-{version}"


def test_the_license_is_the_apache_license_and_pyproject_says_so():
    """LICENSE holds the Apache License 2.0, the licence pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")

    assert ("Apache-2.0", ["LICENSE"]) == (project["license"], project["license-files"])
    assert ["Apache License", "Version 2.0, January 2004"] == [
        line.strip() for line in text.splitlines() if line.strip()][:2]
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_wheel_metadata_carries_the_license(wheel):
    """The metadata names the licence and the file; the file is in the wheel, byte for byte."""
    dist_info = f"{_name(wheel)}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        metadata = Parser().parsestr(archive.read(f"{dist_info}/METADATA").decode())
        shipped = archive.read(f"{dist_info}/licenses/LICENSE")

    assert ("Apache-2.0", ["LICENSE"]) == (metadata["License-Expression"],
                                           metadata.get_all("License-File"))
    assert (ROOT / "LICENSE").read_bytes() == shipped


def test_the_wheel_carries_the_unit_config_and_policies_as_shared_data(wheel):
    """share/retentiond/ in the wheel holds exactly the deploy files and every example policy."""
    prefix = f"{_name(wheel)}.data/data/share/retentiond/"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name.removeprefix(prefix): archive.read(name) for name in archive.namelist()
                   if name.startswith(prefix)}

    assert {name: path.read_bytes() for name, path in SHARED.items()} == shipped


def test_installing_the_wheel_puts_them_under_the_virtualenv_share_retentiond(wheel, tmp_path):
    """In a virtualenv V they land in V/share/retentiond/, the place README's command prints."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"

    _pip("--python", str(python), "install", "--no-deps", "--no-compile", "--quiet", str(wheel))
    printed = subprocess.run([str(python), "-c", FIND], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()

    landed = venv / "share" / "retentiond"
    assert FIND in (ROOT / "deploy" / "README.md").read_text(encoding="utf-8")
    assert str(landed) == printed
    assert sorted(SHARED) == sorted(
        p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file())
    assert "ExecStart=/opt/retentiond/bin/retentiond" in (
        landed / "retentiond.service").read_text(encoding="utf-8")
