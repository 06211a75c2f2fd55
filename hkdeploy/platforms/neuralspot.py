"""The ``neuralspot`` platform: Apollo EVBs, built with neuralSPOT's make, flashed by a runner.

The app in ``firmware/platform/neuralspot`` links the SDK's TFLM library (licensed for Ambiq CPUs
only: it is linked into board firmware and nowhere else). The device is a USB CDC or UART port,
found by VID/PID and serial number unless given. The cycle counter is the core's own: DWT CYCCNT on
Cortex-M4F, the PMU cycle counter on Cortex-M55.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import CheckFailed, HkDeployError, ToolError, UserError
from hkdeploy.platforms.base import LINK, BuiltFirmware, Check, Counter, FirmwareApp, Platform, fixed_urls
from hkdeploy.proc import Command, git_head, run

FIRMWARE_NAME = "hkdeploy_fw"  # the neuralSPOT app's output: build/<FIRMWARE_NAME>.bin/.axf
ARM_TOOLCHAIN_HINT = (
    "install the Arm GNU toolchain: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
    "libstdc++-arm-none-eabi-newlib (or download it from developer.arm.com and set firmware.toolchain_dir)"
)
SDK_HINT = (
    "clone the SDK (git clone https://github.com/AmbiqAI/neuralSPOT) and set NEURALSPOT_ROOT=/path/to/neuralSPOT "
    "or firmware.neuralspot_root in the config"
)


def neuralspot_root(params: DeployParams) -> Path:
    """The neuralSPOT tree: ``firmware.neuralspot_root``, else ``$NEURALSPOT_ROOT``; checked."""
    root = params.firmware.neuralspot_root or (
        Path(os.environ["NEURALSPOT_ROOT"]) if os.environ.get("NEURALSPOT_ROOT") else None
    )
    if root is None:
        raise ToolError("the neuralSPOT SDK is not configured (needed to build for a board)", hint=SDK_HINT)
    root = root.expanduser().resolve()
    if (
        not (root / "Makefile").is_file()
        or not (root / "make").is_dir()
        or not (root / "neuralspot").is_dir()
    ):
        raise ToolError(
            f"{root} is not a neuralSPOT tree (no Makefile, make/ and neuralspot/ in it)", hint=SDK_HINT
        )
    return root


def toolchain_tool(params: DeployParams, tool: str) -> str:
    """``<prefix>-<tool>``, from ``firmware.toolchain_dir`` when set."""
    name = f"{params.firmware.toolchain}-{tool}"
    return str(params.firmware.toolchain_dir / name) if params.firmware.toolchain_dir else name


def neuralspot_command(
    params: DeployParams, board: Board, project: Path, build_dir: Path, sdk: Path, build_id: str
) -> Command:
    """neuralSPOT's make for the rendered app (the same variables ``make firmware`` documents)."""
    platform = params.firmware.platform or board.neuralspot_platform
    if not platform:
        raise UserError(f"board {board.name} has no neuralspot_platform", hint="set firmware.platform")
    argv = ["make", "-C", str(project / "platform" / "neuralspot"), f"-j{params.firmware.jobs}"]
    argv += [f"NEURALSPOT_ROOT={sdk}", f"PLATFORM={platform}"]
    if board.neuralspot_as_version:
        argv.append(f"AS_VERSION={board.neuralspot_as_version}")
    argv += [f"EXPORT_DIR={project / 'model'}", f"FW_BUILD_DIR={build_dir}", f"HK_BUILD_ID={build_id}"]
    argv += [f"HK_BOARD_NAME={board.name}", f"HK_LINK={'uart' if board.link == 'uart' else 'usb'}"]
    if board.clock_hz:
        argv.append(f"HK_CPU_HZ={board.clock_hz}")
    if params.firmware.arena_size:
        argv.append(f"HK_ARENA_SIZE={params.firmware.arena_size}")
    if params.firmware.toolchain_dir:
        argv.append(f"TOOLCHAIN_DIR={params.firmware.toolchain_dir}")
    return Command(argv, timeout=1800, what="the neuralSPOT build", hint="run with -vv to see make's output")


class NeuralSpotPlatform(Platform):
    """Ambiq Apollo EVBs."""

    name = "neuralspot"
    needs_flash = True
    firmware_dirs = ("core", "engine", "protocol", "platform/neuralspot")

    def counter(self, board: Board) -> Counter:
        what = "PMU cycle counter" if board.core == "cortex-m55" else "DWT cycle counter"
        return Counter("cycles", f"{what} of {board.name}", real_time=True)

    def preflight(self, params: DeployParams, board: Board) -> None:
        from hkdeploy.firmware.build import tool_version

        sdk = neuralspot_root(params)  # a config problem first: it does not depend on what is installed
        gcc = toolchain_tool(params, "gcc")
        if tool_version(gcc) is None:
            raise ToolError(
                f"{gcc} is not installed (needed to build for {board.name})", hint=ARM_TOOLCHAIN_HINT
            )
        if shutil.which("make") is None:
            raise ToolError("make is not installed", hint="apt-get install make")
        del sdk

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
        from hkdeploy.firmware.build import binary_sizes, tool_version

        sdk = (
            neuralspot_root(params)
            if not dry_run
            else (params.firmware.neuralspot_root or Path("$NEURALSPOT_ROOT"))
        )
        project = project or out / "project"
        build_dir = out / "build"
        cmd = neuralspot_command(params, board, project, build_dir, sdk, build_id)
        if app.make_vars:  # the app's variables replace the link firmware's of the same name
            names = {v.split("=", 1)[0] for v in app.make_vars}
            argv = [a for a in cmd.argv if a.split("=", 1)[0] not in names] + list(app.make_vars)
            cmd = Command(argv, timeout=cmd.timeout, what=f"the neuralSPOT {app.label} build", hint=cmd.hint)
        run(cmd, dry_run=dry_run, log=log, echo=True)
        binary = build_dir / f"{FIRMWARE_NAME}.bin"
        if dry_run:
            return BuiltFirmware(binary, cmd.argv)
        axf = build_dir / f"{FIRMWARE_NAME}.axf"
        if not binary.is_file() or not axf.is_file():
            raise ToolError(
                f"the neuralSPOT build finished but {binary.name}/{axf.name} are missing in {build_dir}",
                hint="run with -vv to see make's output",
            )
        sizes = binary_sizes(toolchain_tool(params, "size"), axf)
        gcc = toolchain_tool(params, "gcc")
        flash_used, ram_used = sizes["text"] + sizes["data"], sizes["data"] + sizes["bss"]
        from hkdeploy.console import info

        info(
            f"build: {board.name}{'' if app.is_link else f' ({app.label})'}: flash {flash_used} B of {board.app_bytes} B, "
            f"RAM {ram_used} B of {board.sram_bytes} B (text {sizes['text']}, data {sizes['data']}, bss {sizes['bss']})"
        )
        if (board.app_bytes and flash_used > board.app_bytes) or (
            board.sram_bytes and ram_used > board.sram_bytes
        ):
            raise CheckFailed(
                f"the {app.label} does not fit {board.name}",
                hint="use a smaller model or a board with more memory",
            )
        return BuiltFirmware(
            binary,
            cmd.argv,
            sizes,
            {
                "toolchain": tool_version(gcc),
                "neuralspot_root": str(sdk),
                "neuralspot_revision": git_head(sdk),
                "platform": params.firmware.platform or board.neuralspot_platform,
            },
        )

    def checks(self, params: DeployParams, board: Board, runner: str | None = None) -> list[Check]:
        from hkdeploy.doctor import serial_checks, tool_check
        from hkdeploy.flash import make_runner

        checks = [
            tool_check("Arm toolchain", toolchain_tool(params, "gcc"), ARM_TOOLCHAIN_HINT),
            tool_check("make", "make", "apt-get install make"),
        ]
        try:
            root = neuralspot_root(params)
            rev = git_head(root)
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
        from hkdeploy.doctor import tflm_source_checks

        # TFLM from source is optional for a board (the SDK's library is the default)
        return checks + serial_checks(params, board) + tflm_source_checks(params, required=False)

    def device_count(self, requested: int) -> int:
        return 1

    def launch(
        self, params: DeployParams, board: Board, count: int, log_dir: Path
    ) -> contextlib.AbstractContextManager[list[str]]:
        from hkdeploy.link.discovery import find_port

        port = find_port(
            params.link.port,
            params.link.usb_vid or board.usb_vid,
            params.link.usb_pid or board.usb_pid,
            params.link.serial_number,
        )
        return fixed_urls([port])
