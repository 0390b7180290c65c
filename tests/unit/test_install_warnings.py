"""Installing the package prints no deprecation warning about its own metadata."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_building_the_package_warns_nothing_about_its_license(tmp_path: Path) -> None:
    """Issue 11 item 11: `pip install .` printed setuptools' "`project.license` as a TOML table
    is deprecated" warning three times. The metadata is built as pip builds it (an isolated
    build environment with the setuptools pyproject.toml asks for), from a copy of the project's
    metadata so the checkout gets no build/ folder."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path / "dist"),
         str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    output = built.stdout + built.stderr
    assert built.returncode == 0, output[-3000:]
    assert "project.license" not in output
    assert "Warning" not in output, output[-3000:]  # BuildBackendWarning and the like
    wheel = next((tmp_path / "dist").glob("wenming-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: MIT" in archive.read(metadata).decode()
