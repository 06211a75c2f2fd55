"""``hkdeploy doctor``: is everything the chosen board needs installed and reachable?

Checks the Python packages, the compilers (gcc + Python headers for the virtual EVB; the Arm
toolchain, make and neuralSPOT for a board), the flash runner's tool, the serial port and the
permission to open it. Each check says what it found and, when something is missing, how to get it.
No TensorFlow import (package versions come from the installed metadata).
"""

from __future__ import annotations

import grp
import importlib.metadata
import os
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from hkdeploy.boards import Board
from hkdeploy.build import (
    ARM_TOOLCHAIN_HINT,
    neuralspot_revision,
    neuralspot_root,
    target_board,
    tool_version,
)
from hkdeploy.errors import HkDeployError
from hkdeploy.params import DeployParams


@dataclass(frozen=True)
class Check:
    """One line of the doctor's table. ``required`` checks that fail make the command fail (exit 4)."""

    name: str
    ok: bool
    detail: str
    hint: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "missing" if self.required else "warning"


def _package(dist: str, hint: str, required: bool = True) -> Check:
    try:
        return Check(f"python: {dist}", True, importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        return Check(f"python: {dist}", False, "not installed", hint, required)


def _tool(name: str, tool: str, hint: str, required: bool = True) -> Check:
    version = tool_version(tool)
    if version is not None:
        return Check(name, True, f"{shutil.which(tool) or tool}: {version}")
    if shutil.which(tool):
        return Check(name, True, shutil.which(tool) or tool)
    return Check(name, False, f"{tool} not found", hint, required)


def _serial_access(params: DeployParams, board: Board) -> list[Check]:
    from hkdeploy.link.discovery import find_port, list_ports

    checks = []
    try:
        port = find_port(
            params.link.port,
            params.link.usb_vid or board.usb_vid,
            params.link.usb_pid or board.usb_pid,
            params.link.serial_number,
        )
        checks.append(Check("serial port", True, port))
    except HkDeployError as exc:
        seen = ", ".join(p.device for p in list_ports()) or "none"
        return [
            Check(
                "serial port",
                False,
                f"{exc.message} (ports seen: {seen})",
                exc.hint or "connect the board or pass --port",
                required=False,
            )
        ]
    if "://" not in port and os.path.exists(port):
        if os.access(port, os.R_OK | os.W_OK):
            checks.append(Check("serial permission", True, f"{port} is readable and writable"))
        else:
            try:
                group = grp.getgrgid(os.stat(port).st_gid).gr_name
            except KeyError:
                group = "dialout"
            checks.append(
                Check(
                    "serial permission",
                    False,
                    f"no read/write access to {port}",
                    f"sudo usermod -aG {group} $USER, then log out and in again",
                )
            )
    return checks


TFLM_LICENCE_NOTE = (
    "emulated boards, the host and CI use only upstream Apache-2.0 TFLM + CMSIS-NN built from source; "
    "neuralSPOT's prebuilt TFLM / helia libraries and heliaAOT output are licensed for Ambiq CPUs only"
)


def tflm_source_checks(params: DeployParams, required: bool = False) -> list[Check]:
    """One check per upstream tree TFLM built from source needs (see hkdeploy.platforms.tflm_lib)."""
    from hkdeploy.platforms import tflm_lib

    kernels = params.firmware.tflm_kernels
    trees = tflm_lib.TflmTrees.from_params(params.firmware)
    checks = []
    for st in tflm_lib.check_trees(trees, kernels):
        checks.append(
            Check(
                f"TFLM source: {st.name}",
                st.found,
                st.detail,
                "" if st.found else tflm_lib.INSTALL_HINT,
                required=required and st.required,
            )
        )
    checks.append(Check("TFLM licence", True, TFLM_LICENCE_NOTE, required=False))
    return checks


def diagnose(
    params: DeployParams, board_name: str | None = None, runner: str | None = None
) -> tuple[Board, list[Check]]:
    """Every check for the board a build would target (see the module doc)."""
    board = target_board(params, board_name)
    checks = [
        _package("tflite-micro", "pip install tflite-micro (the TFLM golden reference)"),
        _package("tensorflow", "pip install tensorflow (needed by export)"),
        _package("pyserial", "pip install pyserial"),
    ]
    export = params.export_dir / "export_report.json"
    checks.append(
        Check(
            "export",
            export.is_file(),
            str(params.export_dir) if export.is_file() else "not exported yet",
            "run `hkdeploy export` (or `hkdeploy run`)",
            required=False,
        )
    )
    if board.is_sim:
        checks.append(_tool("C compiler (host port)", "gcc", "apt-get install build-essential"))
        include = sysconfig.get_config_var("INCLUDEPY") or ""
        has = bool(include) and (Path(include) / "Python.h").exists()
        checks.append(
            Check(
                "Python headers", has, include if has else "Python.h not found", "apt-get install python3-dev"
            )
        )
        return board, checks

    from hkdeploy.build import toolchain_tool
    from hkdeploy.flash import make_runner

    checks.append(_tool("Arm toolchain", toolchain_tool(params, "gcc"), ARM_TOOLCHAIN_HINT))
    checks.append(_tool("make", "make", "apt-get install make"))
    try:
        root = neuralspot_root(params)
        rev = neuralspot_revision(root)
        checks.append(Check("neuralSPOT SDK", True, f"{root}" + (f" @ {rev[:12]}" if rev else "")))
    except HkDeployError as exc:
        checks.append(Check("neuralSPOT SDK", False, exc.message, exc.hint or ""))
    try:
        r = make_runner(params, board, runner)
        path = r.available()
        checks.append(
            Check(
                f"flash runner ({r.name})",
                path is not None,
                path or f"{r.executable} not found",
                r.install_hint,
            )
        )
    except HkDeployError as exc:
        checks.append(Check("flash runner", False, exc.message, exc.hint or ""))
    checks += _serial_access(params, board)
    checks += tflm_source_checks(params, required=False)
    return board, checks
