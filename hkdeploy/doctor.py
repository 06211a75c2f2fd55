"""``hkdeploy doctor``: is everything the chosen board needs installed and reachable?

Checks the Python packages and the export, then asks the board's platform what it needs (gcc and
the Python headers for the virtual EVB; QEMU, the Arm toolchain and the upstream TFLM trees for an
emulated Cortex-M; the Arm toolchain, make, neuralSPOT, the flash runner and the serial port with
its permission for a board). Each check says what it found and, when something is missing, how to
get it. No TensorFlow import (package versions come from the installed metadata).
"""

from __future__ import annotations

import grp
import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import HkDeployError
from hkdeploy.firmware.build import tool_version
from hkdeploy.platforms import Check, platform_of, target_board

__all__ = ["Check", "diagnose", "serial_checks", "tool_check"]


def _package(dist: str, hint: str, required: bool = True) -> Check:
    try:
        return Check(f"python: {dist}", True, importlib.metadata.version(dist))
    except importlib.metadata.PackageNotFoundError:
        return Check(f"python: {dist}", False, "not installed", hint, required)


def tool_check(name: str, tool: str, hint: str, required: bool = True) -> Check:
    """A check that ``tool`` runs (its ``--version`` line) or at least exists on PATH."""
    version = tool_version(tool)
    if version is not None:
        return Check(name, True, f"{shutil.which(tool) or tool}: {version}")
    if shutil.which(tool):
        return Check(name, True, shutil.which(tool) or tool)
    return Check(name, False, f"{tool} not found", hint, required)


LAB_INSTALL = (
    "pip install 'hkdeploy[lab]' && pip install --force-reinstall --no-deps pyserial-labgrid "
    "(labgrid's pyserial fork and pyserial install the same `serial` package)"
)


def _owner_of_serial(dists: list[str]) -> str | None:
    """Which distribution's files the installed ``serial`` package is (by its RECORD hashes)."""
    import base64
    import hashlib

    for dist in dists:
        try:
            files = importlib.metadata.files(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        entry = next((f for f in files if str(f).replace(os.sep, "/") == "serial/rfc2217.py"), None)
        if entry is None or entry.hash is None:
            continue
        path = Path(str(entry.locate()))
        if not path.is_file():
            continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).rstrip(b"=").decode()
        if digest == entry.hash.value:
            return dist
    return None


def _serial_packages() -> list[Check]:
    """pyserial, and with the lab extra labgrid's fork of it: both install the package ``serial``, so
    uninstalling either deletes the other's files; the last installed one's files are in place."""
    installed = {}
    for dist in ("pyserial", "pyserial-labgrid"):
        try:
            installed[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    spec = importlib.util.find_spec("serial")
    if not installed or spec is None or not (Path(spec.origin or "").is_file()):
        return [
            Check(
                "python: serial",
                False,
                "the serial package is missing"
                + (
                    f" although {', '.join(installed)} is installed (one was uninstalled?)"
                    if installed
                    else ""
                ),
                "pip install --force-reinstall --no-deps pyserial-labgrid"
                if "pyserial-labgrid" in installed
                else "pip install --force-reinstall pyserial",
            )
        ]
    owner = _owner_of_serial(list(installed)) if len(installed) > 1 else next(iter(installed))
    detail = f"{owner} {installed[owner]}" if owner else "files of " + " + ".join(installed) + " mixed"
    checks = [Check("python: serial", True, detail)]
    try:
        labgrid = importlib.metadata.version("labgrid")
    except importlib.metadata.PackageNotFoundError:
        checks.append(
            Check("python: labgrid (lab places)", False, "not installed", LAB_INSTALL, required=False)
        )
        return checks
    checks.append(Check("python: labgrid (lab places)", True, labgrid))
    if owner != "pyserial-labgrid":
        checks.append(
            Check(
                "python: serial for labgrid",
                False,
                f"labgrid {labgrid} wants pyserial-labgrid's `serial`, but {detail} is in place "
                "(pyserial was installed after it); uninstalling either breaks both",
                "pip install --force-reinstall --no-deps pyserial-labgrid",
                required=False,
            )
        )
    return checks


def serial_checks(params: DeployParams, board: Board) -> list[Check]:
    """The board's serial port (found by VID/PID/serial or given) and the permission to open it."""
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
        *_serial_packages(),
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
    return board, checks + platform_of(board).checks(params, board, runner)
