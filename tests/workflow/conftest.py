"""Fixtures of the workflow tests: a job holding the demo's export, and a fake neuralSPOT tree with
test-double tools."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest


def _script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def job(exported_demo: Any, tmp_path: Path) -> Path:
    job = tmp_path / "job"
    shutil.copytree(exported_demo.export_dir, job / "export")
    return job


@pytest.fixture
def fake_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A neuralSPOT-shaped folder (a git checkout) and test-double tools; returns their paths."""
    sdk = tmp_path / "neuralSPOT"
    for sub in ("make", "neuralspot"):
        (sdk / sub).mkdir(parents=True)
    (sdk / "Makefile").write_text("# fake neuralSPOT\n")
    git = ["git", "-C", str(sdk), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fake"], check=True)
    rev = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    tools = tmp_path / "tools"
    # fake make: record argv, then write the outputs where FW_BUILD_DIR says
    _script(
        tools / "make",
        f'echo "$@" > {tools}/make.args\nfor a in "$@"; do case "$a" in FW_BUILD_DIR=*) d="${{a#FW_BUILD_DIR=}}";; esac; done\n'
        'mkdir -p "$d" && printf "fw" > "$d/hkdeploy_fw.bin" && printf "elf" > "$d/hkdeploy_fw.axf"\n',
    )
    _script(tools / "arm-none-eabi-gcc", 'echo "arm-none-eabi-gcc (fake) 12.2.1"\n')
    _script(
        tools / "arm-none-eabi-size",
        'echo "   text    data     bss     dec     hex filename"\n'
        'echo " ${FAKE_TEXT:-120000}    2000  ${FAKE_BSS:-40000}  162000   278d0 $2"\n',
    )
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("NEURALSPOT_ROOT", raising=False)
    return {"sdk": sdk, "tools": tools, "rev": Path(rev)}
