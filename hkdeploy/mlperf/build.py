"""``hkdeploy build --app mlperf``: the MLPerf Tiny DUT image for a board or the virtual EVB.

The same flow as ``hkdeploy.firmware.build.build`` (rendered project, manifest, stale checks) with the DUT
front end (``firmware/dut``) in place of the binary link core, on the board's platform: ``host``
(gcc, ``-DHK_APP_MLPERF=1``), ``qemu`` (the emulated Cortex-M with upstream TFLM, ``HK_APP_MLPERF``)
or ``neuralspot`` (``HK_APP=mlperf``, always on the UART). Its output goes
to ``job_dir/firmware/<board>-mlperf`` so the link firmware and the DUT image live side by side.
No TensorFlow here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hkdeploy import __version__
from hkdeploy.boards import Board, get_board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.contracts import BuildManifest, load_build, load_export
from hkdeploy.errors import CheckFailed, ToolError, UserError
from hkdeploy.firmware.build import (
    MANIFEST,
    BuildResult,
    _sha256_file,
    binary_sizes,
    firmware_files,
    manifest_stale_reasons,
    render_project,
    sources_hash,
    tool_version,
)
from hkdeploy.fsutil import write_json
from hkdeploy.mlperf.firmware import HOST_DUT_BINARY, dut_defines, host_dut_command, neuralspot_dut_vars
from hkdeploy.platforms import BuiltFirmware, Platform, platform_of, target_board
from hkdeploy.proc import Command, git_head, run

APP = "mlperf"
PLATFORMS = ("host", "neuralspot", "qemu")


def out_dir(params: DeployParams, board: Board) -> Path:
    return params.firmware_dir / f"{board.name}-{APP}"


def _platform(board: Board) -> Platform:
    platform = platform_of(board)
    if platform.name not in PLATFORMS:
        raise UserError(
            f"the MLPerf DUT image is not available for {board.name} (platform {platform.name})",
            hint="build it for the virtual EVB (backend sim) or a neuralSPOT board",
        )
    return platform


def dut_files(params: DeployParams, board: Board) -> dict[str, bytes]:
    """The rendered project: the platform's firmware folders plus firmware/dut."""
    files = firmware_files(params.export_dir, (*_platform(board).firmware_dirs, "dut"))
    # what the image reports is part of its identity: a changed name or model id means a rebuild
    m = params.mlperf
    files["model/mlperf.json"] = json.dumps(
        {"name": m.dut_name(), "model_id": m.model_id, "energy": m.energy}, sort_keys=True
    ).encode()
    return dict(sorted(files.items()))


def _build_host(
    params: DeployParams,
    platform: Platform,
    board: Board,
    project: Path,
    out: Path,
    *,
    dry_run: bool,
    log: Path,
) -> BuiltFirmware:
    m = params.mlperf
    binary = out / HOST_DUT_BINARY
    tmp = binary.with_name(binary.name + ".tmp")
    defines = dut_defines(m.dut_name(), m.model_id, m.energy)
    if params.firmware.arena_size:
        defines += (f"HK_HOST_ARENA_SIZE={params.firmware.arena_size}u",)
    cmd = host_dut_command(project, tmp, defines)
    run(cmd, dry_run=dry_run, log=log, echo=False)
    if dry_run:
        return BuiltFirmware(binary, cmd.argv)
    tmp.replace(binary)
    extra = {"emulates": platform.limits(params, board).name, "toolchain": tool_version("gcc")}
    return BuiltFirmware(binary, cmd.argv, binary_sizes("size", binary), extra)


def _build_qemu(
    params: DeployParams,
    platform: Platform,
    board: Board,
    project: Path,
    out: Path,
    build_id: str,
    *,
    dry_run: bool,
    log: Path,
) -> BuiltFirmware:
    from hkdeploy.mlperf.firmware import DUT_SOURCES
    from hkdeploy.platforms.qemu import CORES, ELF
    from hkdeploy.platforms.qemu_build import build_qemu_firmware
    from hkdeploy.platforms.tflm_lib import engine_build, export_ops, library_for

    m = params.mlperf
    machine = board.qemu_machine or ""
    elf = out / ELF
    if dry_run:
        return BuiltFirmware(elf, ["arm-none-eabi-g++", "...", "-o", str(elf)])
    core = CORES.get(board.core)
    if core is None:
        raise ToolError(f"board {board.name} has core {board.core}; QEMU builds cortex-m4f or cortex-m55")
    export = load_export(params.export_dir)
    lib = library_for(params, core, ops=export_ops(params.export_dir))
    eng = engine_build(lib, project / "model")
    defines: dict[str, str | int | None] = dict(eng.defines)
    defines.update(
        HK_APP_MLPERF=1,
        HK_DUT_NAME=f'"{m.dut_name()}"',
        HK_DUT_MODEL_ID=f'"{m.model_id}"',
        HK_DUT_INPUT_MAX=f"{export.model.input.bytes}u",
    )
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
        log=log,
        core_sources=DUT_SOURCES,
    )
    extra = {"toolchain": tool_version("arm-none-eabi-gcc"), "qemu_machine": machine, "tflm_library": lib.key}
    return BuiltFirmware(elf, built.commands[-1].argv if built.commands else [], built.sizes, extra)


def _build_neuralspot(
    params: DeployParams, board: Board, project: Path, out: Path, build_id: str, *, dry_run: bool, log: Path
) -> BuiltFirmware:
    from hkdeploy.platforms.neuralspot import (
        FIRMWARE_NAME,
        neuralspot_command,
        neuralspot_root,
        toolchain_tool,
    )

    m = params.mlperf
    sdk = (
        neuralspot_root(params)
        if not dry_run
        else (params.firmware.neuralspot_root or Path("$NEURALSPOT_ROOT"))
    )
    build_dir = out / "build"
    base = neuralspot_command(params, board, project, build_dir, sdk, build_id)
    # the DUT always talks over the UART (ns-uart): the runner expects a serial line at a fixed baud
    argv = [a for a in base.argv if not a.startswith("HK_LINK=")] + ["HK_LINK=uart"]
    argv += neuralspot_dut_vars(m.dut_name(), m.model_id, m.energy, board.mlperf_timestamp_pin)
    cmd = Command(argv, timeout=base.timeout, what="the neuralSPOT DUT build", hint=base.hint)
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
    flash_used, ram_used = sizes["text"] + sizes["data"], sizes["data"] + sizes["bss"]
    info(
        f"build: {board.name} (MLPerf DUT): flash {flash_used} B of {board.app_bytes} B, "
        f"RAM {ram_used} B of {board.sram_bytes} B (text {sizes['text']}, data {sizes['data']}, bss {sizes['bss']})"
    )
    if (board.app_bytes and flash_used > board.app_bytes) or (
        board.sram_bytes and ram_used > board.sram_bytes
    ):
        raise CheckFailed(
            f"the DUT image does not fit {board.name}", hint="use a smaller model or a board with more memory"
        )
    extra = {
        "toolchain": tool_version(toolchain_tool(params, "gcc")),
        "neuralspot_root": str(sdk),
        "neuralspot_revision": git_head(sdk),
        "platform": params.firmware.platform or board.neuralspot_platform,
    }
    return BuiltFirmware(binary, cmd.argv, sizes, extra)


def build_mlperf(
    params: DeployParams, board_name: str | None = None, *, dry_run: bool = False
) -> BuildResult:
    """Render and build the DUT image (see the module doc).

    Raises:
        UserError: no export, a platform without a DUT, or energy mode on a board without
        ``mlperf_timestamp_pin``. ToolError: toolchain/SDK missing or the build failed.
        CheckFailed: it does not fit the board.
    """
    board = target_board(params, board_name)
    platform = _platform(board)
    m = params.mlperf
    if platform.name == "qemu" and m.energy:
        raise UserError(
            f"{board.name} has no GPIO for the energy mode's timestamps",
            hint="energy mode needs a real board with mlperf_timestamp_pin; use mlperf.energy=false on QEMU",
        )
    if platform.name == "neuralspot":
        if m.energy and board.mlperf_timestamp_pin is None:
            raise UserError(
                f"energy mode needs the timestamp GPIO of {board.name}",
                hint="set mlperf_timestamp_pin in a board file of your own (board.file) to the pin wired to the "
                "EEMBC interface board",
            )
        if board.mlperf_uart != 0:
            raise UserError(
                f"{board.name}: mlperf_uart {board.mlperf_uart} is not supported",
                hint="the neuralSPOT DUT uses ns-uart, which drives the BSP's COM UART (0, the J-Link VCOM): "
                "set mlperf_uart: 0 and wire the runner (or the EEMBC interface board) to that UART",
            )
    export = load_export(params.export_dir, headers=True)
    if not dry_run:
        platform.preflight(params, board)
    out = out_dir(params, board)
    files = dut_files(params, board)
    src_sha = sources_hash(files)
    build_id = f"hk-{src_sha[:12]}"
    log = params.job_dir / "logs" / "commands.log"
    manifest: dict[str, Any] = {
        "schema": "hkdeploy.build_manifest/1",
        "hkdeploy_version": __version__,
        "app": APP,
        "board": board.name,
        "platform": platform.name,
        "mlperf": {"name": m.dut_name(), "model_id": m.model_id, "energy": m.energy},
        "model_sha256": export.model.sha256,
        "sources_sha256": src_sha,
        "build_id": build_id,
    }
    project = render_project(files, out / "project") if not dry_run else out / "project"
    if platform.name == "host":
        built = _build_host(params, platform, board, project, out, dry_run=dry_run, log=log)
    elif platform.name == "qemu":
        built = _build_qemu(params, platform, board, project, out, build_id, dry_run=dry_run, log=log)
    else:
        built = _build_neuralspot(params, board, project, out, build_id, dry_run=dry_run, log=log)
    if dry_run:
        return BuildResult(board, out, built.binary, manifest)
    manifest.update(built.extra, command=built.command, sizes=built.sizes)
    manifest.update(binary=built.binary.relative_to(out).as_posix(), binary_sha256=_sha256_file(built.binary))
    write_json(out / MANIFEST, manifest)
    return BuildResult(board, out, built.binary, manifest)


def stale_reasons(params: DeployParams, board: Board) -> list[str]:
    """Why the DUT image for ``board`` must not be used (empty: it is current)."""
    return manifest_stale_reasons(
        params,
        out_dir(params, board),
        dut_files(params, board),
        f"MLPerf DUT build for {board.name}",
        "the firmware sources, model headers or mlperf settings changed since it was built",
    )


def current_dut_build(params: DeployParams, board: Board, *, force: bool = False) -> BuildResult:
    """The built DUT image for ``board`` if it is current (or ``force``).

    Raises:
        UserError: missing or stale image (the reasons and `hkdeploy build --app mlperf` as the fix).
    """
    out = out_dir(params, board)
    reasons = stale_reasons(params, board)
    manifest: BuildManifest | None = load_build(out)
    usable = manifest is not None and bool(manifest.binary) and (out / (manifest.binary or "")).is_file()
    if reasons and (not force or not usable):
        raise UserError(
            f"refusing to use the MLPerf DUT image for {board.name}: " + "; ".join(reasons),
            hint="run `hkdeploy build --app mlperf`" + ("; --force uses it anyway" if usable else ""),
        )
    assert manifest is not None and manifest.binary
    return BuildResult(board, out, out / manifest.binary, manifest.model_dump(by_alias=True))


def ensure_dut(params: DeployParams, board: Board) -> Path:
    """The DUT binary of a platform that starts its own devices (virtual EVB, QEMU) for the current
    export and settings, built when missing or stale."""
    if stale_reasons(params, board):
        return build_mlperf(params, board.name).binary
    return current_dut_build(params, board).binary


def ensure_dut_sim(params: DeployParams) -> Path:
    """The virtual EVB's DUT binary for the current export and settings, built when missing or stale."""
    return ensure_dut(params, get_board("sim"))
