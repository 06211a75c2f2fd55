"""The ``qemu`` platform: the real board firmware on an emulated Cortex-M (qemu-system-arm).

The firmware is the boards' own link core and TFLM engine with a Cortex-M platform of ours
(``firmware/platform/qemu``: startup, linker scripts, CMSDK UART) for QEMU's ``mps2-an386``
(Cortex-M4) and ``mps3-an547`` (Cortex-M55). TFLM is upstream tflite-micro + CMSIS-NN built from
trees the user provides (Apache-2.0); neuralSPOT's prebuilt TFLM / helia libraries are licensed for
Ambiq CPUs only and are never used here. Devices are qemu processes this platform owns. QEMU does
not emulate the DWT counter: counts are instructions under ``-icount`` (deterministic), reported
as instructions on emulated Cortex-M, never as Apollo latency.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from hkdeploy.boards import Board
from hkdeploy.errors import ToolError
from hkdeploy.params import DeployParams
from hkdeploy.platforms.base import BuiltFirmware, Check, Counter, Platform

QEMU = "qemu-system-arm"
QEMU_HINT = "apt-get install qemu-system-arm"
ARM_GCC_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
TFLM_HINT = (
    "the emulated Cortex-M runs upstream TFLM built from source: fetch tflite-micro and the trees its make "
    "downloads (CMSIS-NN, CMSIS_6, flatbuffers, gemmlowp, ruy) and set HK_TFLM_ROOT / HK_TFLM_DOWNLOADS "
    "or firmware.tflm_root / firmware.tflm_downloads (docs/firmware.md, 'TFLM from source'); never "
    "neuralSPOT's prebuilt libraries, which are licensed for Ambiq CPUs only"
)


def tflm_root(params: DeployParams) -> Path | None:
    """The upstream tflite-micro tree (config, else $HK_TFLM_ROOT), or None."""
    value = getattr(params.firmware, "tflm_root", None) or os.environ.get("HK_TFLM_ROOT")
    return Path(value).expanduser() if value else None


class QemuPlatform(Platform):
    """Emulated Cortex-M boards (qemu_m4, qemu_m55)."""

    name = "qemu"
    needs_flash = False
    firmware_dirs = ("core", "engine", "protocol", "platform/qemu")

    def counter(self, board: Board) -> Counter:
        core = "Cortex-M55" if board.core == "cortex-m55" else "Cortex-M4"
        return Counter(
            "instructions",
            f"instructions on emulated {core} (QEMU -icount), not Apollo latency",
            real_time=False,
        )

    def _machine(self, board: Board) -> str:
        if not board.qemu_machine:
            raise ToolError(
                f"board {board.name} names no qemu_machine", hint="add qemu_machine to its board file"
            )
        return board.qemu_machine

    def preflight(self, params: DeployParams, board: Board) -> None:
        self._machine(board)
        if shutil.which("arm-none-eabi-gcc") is None:
            raise ToolError(
                f"arm-none-eabi-gcc is not installed (needed to build for {board.name})", hint=ARM_GCC_HINT
            )
        root = tflm_root(params)
        if root is None or not (root / "tensorflow" / "lite" / "micro").is_dir():
            where = f"{root} is not a tflite-micro tree" if root else "no tflite-micro tree is configured"
            raise ToolError(f"cannot build the TFLM engine for {board.name}: {where}", hint=TFLM_HINT)

    def build(
        self,
        params: DeployParams,
        board: Board,
        project: Path | None,
        out: Path,
        build_id: str,
        *,
        dry_run: bool,
        log: Path,
    ) -> BuiltFirmware:
        self.preflight(params, board)
        raise ToolError(f"building the TFLM engine for {board.name} is not available yet", hint=TFLM_HINT)

    def checks(self, params: DeployParams, board: Board, runner: str | None = None) -> list[Check]:
        from hkdeploy.doctor import tool_check

        root = tflm_root(params)
        ok = root is not None and (root / "tensorflow" / "lite" / "micro").is_dir()
        return [
            tool_check("QEMU", QEMU, QEMU_HINT),
            tool_check("Arm toolchain", "arm-none-eabi-gcc", ARM_GCC_HINT),
            Check(
                "TFLM sources (upstream)",
                ok,
                str(root) if ok else (f"{root}: no tensorflow/lite/micro" if root else "not configured"),
                TFLM_HINT,
            ),
        ]

    @contextlib.contextmanager
    def launch(self, params: DeployParams, board: Board, count: int, log_dir: Path) -> Iterator[list[str]]:
        raise ToolError(f"no firmware for {board.name} can be built yet", hint=TFLM_HINT)
        yield []
