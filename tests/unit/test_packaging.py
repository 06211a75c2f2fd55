"""A non-editable install must find templates, firmware sources, configs and the demo model."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_data_folders(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("hkdeploy-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for top in ("firmware", "configs", "examples"):
        tracked = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", top], capture_output=True, text=True, check=True
        ).stdout.split()
        assert tracked, top
        for path in tracked:
            assert f"hkdeploy/_data/{path}" in names, path
    assert "hkdeploy/_data/examples/demo_model.keras" in names
    assert "hkdeploy/paths.py" in names


def test_paths_prefer_shipped_data(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hkdeploy import paths

    pkg = tmp_path / "hkdeploy"
    (pkg / "_data" / "templates").mkdir(parents=True)
    monkeypatch.setattr(paths, "_PKG", pkg)
    assert paths.templates_dir() == pkg / "_data" / "templates"
    assert paths.firmware_dir() == tmp_path / "firmware"  # falls back to the source checkout layout
