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
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import ToolError
from hkdeploy.platforms.base import LINK, BuiltFirmware, Check, Counter, FirmwareApp, Platform

if TYPE_CHECKING:
    from hkdeploy.platforms.tflm_lib import TflmLibrary, TflmTrees

QEMU = "qemu-system-arm"
QEMU_HINT = "apt-get install qemu-system-arm"
ARM_GCC_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"
TFLM_HINT = (
    "the emulated Cortex-M runs upstream TFLM built from source: fetch tflite-micro and the trees its make "
    "downloads (CMSIS-NN, CMSIS_6, flatbuffers, gemmlowp, ruy) and set HK_TFLM_ROOT / HK_TFLM_DOWNLOADS "
    "or firmware.tflm_root / firmware.tflm_downloads (docs/tflm.md); never neuralSPOT's prebuilt "
    "libraries, which are licensed for Ambiq CPUs only"
)
ELF = "hk_qemu.elf"
CORES = {"cortex-m4f": "cortex-m4", "cortex-m55": "cortex-m55"}


class QemuPlatform(Platform):
    """Emulated Cortex-M boards (qemu_m4, qemu_m55)."""

    name = "qemu"
    needs_flash = False
    firmware_dirs = ("core", "engine", "protocol", "platform/qemu")

    def counter(self, board: Board) -> Counter:
        core = "Cortex-M55" if board.core == "cortex-m55" else "Cortex-M4"
        return Counter(
            "instructions",
            f"SysTick ticks of emulated {core} under QEMU -icount (instructions), not Apollo latency",
            real_time=False,
        )

    def _machine(self, board: Board) -> str:
        if not board.qemu_machine:
            raise ToolError(
                f"board {board.name} names no qemu_machine", hint="add qemu_machine to its board file"
            )
        return board.qemu_machine

    def _trees(self, params: DeployParams) -> TflmTrees:
        from hkdeploy.platforms.tflm_lib import TflmTrees

        return TflmTrees.from_params(params.firmware)

    def preflight(self, params: DeployParams, board: Board) -> None:
        from hkdeploy.platforms.tflm_lib import check_trees

        self._machine(board)
        if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-g++") is None:
            raise ToolError(
                f"the Arm GNU toolchain is not installed (needed to build for {board.name})",
                hint=ARM_GCC_HINT,
            )
        missing = [
            t
            for t in check_trees(self._trees(params), params.firmware.tflm_kernels)
            if t.required and not t.found
        ]
        if missing:
            what = "; ".join(f"{t.name}: {t.detail}" for t in missing)
            raise ToolError(f"cannot build the TFLM engine for {board.name}: {what}", hint=TFLM_HINT)

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
        app: FirmwareApp = LINK,
    ) -> BuiltFirmware:
        from hkdeploy.firmware.build import tool_version
        from hkdeploy.link import CORE_SOURCES
        from hkdeploy.platforms.qemu_build import build_qemu_firmware
        from hkdeploy.platforms.tflm_lib import engine_build, export_ops, library_for

        machine = self._machine(board)
        project = project or out / "project"
        elf = out / ELF
        core = CORES.get(board.core)
        if core is None:
            raise ToolError(
                f"board {board.name} has core {board.core}; QEMU builds cortex-m4f or cortex-m55",
                hint="use qemu_m4 or qemu_m55, or a board file with one of those cores",
            )
        lib = (
            self._planned_library(params, board, core)
            if dry_run
            else library_for(params, core, ops=export_ops(params.export_dir))
        )
        eng = engine_build(lib, project / "model")
        defines = {**eng.defines, **dict(app.defines)}
        if params.firmware.arena_size:
            defines["HK_ARENA_SIZE"] = params.firmware.arena_size
        built = build_qemu_firmware(
            machine,
            [project / "engine" / "hk_engine_tflm.cc"],
            elf,
            include_dirs=eng.include_dirs,
            system_include_dirs=eng.system_include_dirs,
            defines=defines,
            libs=eng.libs,
            board_name=board.name,
            build_id=build_id,
            dry_run=dry_run,
            log=log,
            core_sources=CORE_SOURCES if app.is_link else app.front_end,
        )
        if dry_run:
            return BuiltFirmware(elf, built.commands[-1].argv if built.commands else [])
        if board.app_bytes and built.sizes.get("text", 0) + built.sizes.get("data", 0) > board.app_bytes:
            from hkdeploy.errors import CheckFailed

            raise CheckFailed(
                f"the firmware does not fit {board.name}'s code memory ({board.app_bytes} B)",
                hint="use a smaller model or qemu_m4 (4 MB)",
            )
        return BuiltFirmware(
            elf,
            built.commands[-1].argv if built.commands else [],
            built.sizes,
            {
                "toolchain": tool_version("arm-none-eabi-gcc"),
                "qemu_machine": machine,
                "tflm_library": {
                    "key": lib.key,
                    "core": lib.core,
                    "kernels": lib.kernels,
                    "path": str(lib.path),
                },
            },
        )

    def _planned_library(self, params: DeployParams, board: Board, core: str) -> TflmLibrary:
        """For ``--dry-run``: the library a real build makes or reuses (named by its cache place),
        after it says so. The trees must be configured: without them there are no real include
        paths to print."""
        from hkdeploy.console import console
        from hkdeploy.platforms.tflm_lib import check_trees, planned_library

        trees, kernels = self._trees(params), params.firmware.tflm_kernels
        missing = [t for t in check_trees(trees, kernels) if t.required and not t.found]
        if missing:
            what = "; ".join(f"{t.name}: {t.detail}" for t in missing)
            raise ToolError(f"cannot describe the TFLM engine build for {board.name}: {what}", hint=TFLM_HINT)
        lib = planned_library(trees, core, kernels)
        console.print(
            f"(dry run) build or reuse upstream TFLM for {core} ({kernels} kernels, the export's ops) from "
            f"{trees.tflm} as {lib.path}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return lib

    def checks(self, params: DeployParams, board: Board, runner: str | None = None) -> list[Check]:
        from hkdeploy.doctor import tflm_source_checks, tool_check

        return [
            tool_check("QEMU", QEMU, QEMU_HINT),
            tool_check("Arm toolchain (C)", "arm-none-eabi-gcc", ARM_GCC_HINT),
            tool_check("Arm toolchain (C++)", "arm-none-eabi-g++", ARM_GCC_HINT),
            *tflm_source_checks(params, required=True),
        ]

    @contextlib.contextmanager
    def launch(self, params: DeployParams, board: Board, count: int, log_dir: Path) -> Iterator[list[str]]:
        from hkdeploy.firmware.build import ensure_built
        from hkdeploy.platforms.qemu_process import QemuBoard

        elf = ensure_built(params, board)
        machine = self._machine(board)
        log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            urls = []
            for i in range(max(1, count)):
                qb = QemuBoard(elf, machine, log_path=log_dir / f"qemu{i}.log")
                stack.enter_context(qb)
                urls.append(qb.url)
            yield urls
