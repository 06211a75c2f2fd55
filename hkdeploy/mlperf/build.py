"""``hkdeploy build --app mlperf``: the MLPerf Tiny DUT image for a board or the virtual EVB.

The same flow as ``hkdeploy.build.build`` (rendered project, manifest, stale checks) with the DUT
front end (``firmware/dut``) in place of the binary link core. Its output goes to
``job_dir/firmware/<board>-mlperf`` so the link firmware and the DUT image live side by side.
No TensorFlow here.
"""

from __future__ import annotations

import json
import shutil
import sysconfig
from pathlib import Path
from typing import Any

from hkdeploy import __version__
from hkdeploy.boards import Board, get_board
from hkdeploy.build import (
    ARM_TOOLCHAIN_HINT,
    FIRMWARE_NAME,
    MANIFEST,
    BuildResult,
    _export_sha,
    _sha256_file,
    binary_sizes,
    emulated,
    neuralspot_command,
    neuralspot_revision,
    neuralspot_root,
    project_files,
    render_project,
    sources_hash,
    target_board,
    tool_version,
    toolchain_tool,
)
from hkdeploy.console import info
from hkdeploy.errors import CheckFailed, ToolError, UserError
from hkdeploy.fsutil import write_json
from hkdeploy.mlperf.firmware import dut_defines, host_dut_argv, neuralspot_dut_vars
from hkdeploy.params import DeployParams
from hkdeploy.paths import firmware_dir
from hkdeploy.proc import Command, run

APP = "mlperf"
SIM_BINARY = "hk_dut_host"


def out_dir(params: DeployParams, board: Board) -> Path:
    return params.firmware_dir / f"{board.name}-{APP}"


def dut_files(params: DeployParams, board: Board) -> dict[str, bytes]:
    """The rendered project: the link firmware's files plus firmware/dut."""
    files = project_files(params, board)
    fw = firmware_dir()
    for path in sorted((fw / "dut").glob("*")):
        if path.is_file() and path.suffix in (".c", ".h"):
            files[path.relative_to(fw).as_posix()] = path.read_bytes()
    # what the image reports is part of its identity: a changed name or model id means a rebuild
    m = params.mlperf
    files["model/mlperf.json"] = json.dumps(
        {"name": m.dut_name(), "model_id": m.model_id, "energy": m.energy}, sort_keys=True
    ).encode()
    return dict(sorted(files.items()))


def build_mlperf(
    params: DeployParams, board_name: str | None = None, *, dry_run: bool = False
) -> BuildResult:
    """Render and build the DUT image (see the module doc).

    Raises:
        UserError: no export, or energy mode on a board without ``mlperf_timestamp_pin``.
        ToolError: toolchain/SDK missing or the build failed. CheckFailed: it does not fit the board.
    """
    board = target_board(params, board_name)
    m = params.mlperf
    if m.energy and not board.is_sim and board.mlperf_timestamp_pin is None:
        raise UserError(
            f"energy mode needs the timestamp GPIO of {board.name}",
            hint="set mlperf_timestamp_pin in a board file of your own (board.file) to the pin wired to the "
            "EEMBC interface board",
        )
    if not board.is_sim and board.mlperf_uart != 0:
        raise UserError(
            f"{board.name}: mlperf_uart {board.mlperf_uart} is not supported",
            hint="the neuralSPOT DUT uses ns-uart, which drives the BSP's COM UART (0, the J-Link VCOM): "
            "set mlperf_uart: 0 and wire the runner (or the EEMBC interface board) to that UART",
        )
    model_sha = _export_sha(params)
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
        "mlperf": {"name": m.dut_name(), "model_id": m.model_id, "energy": m.energy},
        "model_sha256": model_sha,
        "sources_sha256": src_sha,
        "build_id": build_id,
    }
    if board.is_sim:
        if not dry_run and shutil.which("gcc") is None:
            raise ToolError(
                "gcc is not installed (needed for the virtual EVB)", hint="apt-get install build-essential"
            )
        include = sysconfig.get_config_var("INCLUDEPY")
        if not dry_run and (not include or not (Path(include) / "Python.h").exists()):
            raise ToolError("the Python headers (Python.h) are missing", hint="apt-get install python3-dev")
        project = render_project(files, out / "project") if not dry_run else out / "project"
        binary = out / SIM_BINARY
        tmp = binary.with_name(binary.name + ".tmp")
        argv = host_dut_argv(project, project / "model", tmp, dut_defines(m.dut_name(), m.model_id, m.energy))
        cmd = Command(
            argv,
            timeout=300,
            what="the virtual EVB DUT build",
            hint="apt-get install build-essential python3-dev",
        )
        run(cmd, dry_run=dry_run, log=log, echo=False)
        if dry_run:
            return BuildResult(board, out, binary, manifest)
        tmp.replace(binary)
        manifest.update(
            emulates=emulated(params, board).name,
            toolchain=tool_version("gcc"),
            neuralspot_revision=None,
            command=argv,
            sizes=binary_sizes("size", binary),
        )
    else:
        gcc = toolchain_tool(params, "gcc")
        if not dry_run and tool_version(gcc) is None:
            raise ToolError(
                f"{gcc} is not installed (needed to build for {board.name})", hint=ARM_TOOLCHAIN_HINT
            )
        if not dry_run and shutil.which("make") is None:
            raise ToolError("make is not installed", hint="apt-get install make")
        sdk = (
            neuralspot_root(params)
            if not dry_run
            else (params.firmware.neuralspot_root or Path("$NEURALSPOT_ROOT"))
        )
        project = render_project(files, out / "project") if not dry_run else out / "project"
        build_dir = out / "build"
        base = neuralspot_command(params, board, project, build_dir, sdk, build_id)
        # the DUT always talks over the UART (ns-uart): the runner expects a serial line at a fixed baud
        argv = [a for a in base.argv if not a.startswith("HK_LINK=")] + ["HK_LINK=uart"]
        argv += neuralspot_dut_vars(m.dut_name(), m.model_id, m.energy, board.mlperf_timestamp_pin)
        cmd = Command(argv, timeout=base.timeout, what="the neuralSPOT DUT build", hint=base.hint)
        run(cmd, dry_run=dry_run, log=log, echo=True)
        binary = build_dir / f"{FIRMWARE_NAME}.bin"
        if dry_run:
            return BuildResult(board, out, binary, manifest)
        axf = build_dir / f"{FIRMWARE_NAME}.axf"
        if not binary.is_file() or not axf.is_file():
            raise ToolError(
                f"the neuralSPOT build finished but {binary.name}/{axf.name} are missing in {build_dir}",
                hint="run with -vv to see make's output",
            )
        sizes = binary_sizes(toolchain_tool(params, "size"), axf)
        manifest.update(
            toolchain=tool_version(gcc),
            neuralspot_root=str(sdk),
            neuralspot_revision=neuralspot_revision(sdk),
            platform=params.firmware.platform or board.neuralspot_platform,
            command=argv,
            sizes=sizes,
        )
        flash_used, ram_used = sizes["text"] + sizes["data"], sizes["data"] + sizes["bss"]
        info(
            f"build: {board.name} (MLPerf DUT): flash {flash_used} B of {board.app_bytes} B, RAM {ram_used} B of {board.sram_bytes} B"
        )
        if (board.app_bytes and flash_used > board.app_bytes) or (
            board.sram_bytes and ram_used > board.sram_bytes
        ):
            raise CheckFailed(
                f"the DUT image does not fit {board.name}",
                hint="use a smaller model or a board with more memory",
            )
    manifest.update(binary=binary.relative_to(out).as_posix(), binary_sha256=_sha256_file(binary))
    write_json(out / MANIFEST, manifest)
    return BuildResult(board, out, binary, manifest)


def stale_reasons(params: DeployParams, board: Board) -> list[str]:
    """Why the DUT image for ``board`` must not be used (empty: it is current)."""
    out = out_dir(params, board)
    path = out / MANIFEST
    if not path.is_file():
        return [f"no MLPerf DUT build for {board.name} in {out}"]
    manifest = json.loads(path.read_text())
    binary = out / manifest.get("binary", "")
    if not binary.is_file():
        return [f"the binary {binary} is missing"]
    reasons = []
    if _sha256_file(binary) != manifest.get("binary_sha256"):
        reasons.append(f"{binary.name} changed after the build")
    if manifest.get("model_sha256") != _export_sha(params):
        reasons.append("it was built for another model than the current export")
    if manifest.get("sources_sha256") != sources_hash(dut_files(params, board)):
        reasons.append("the firmware sources, model headers or mlperf settings changed since it was built")
    return reasons


def current_dut_build(params: DeployParams, board: Board, *, force: bool = False) -> BuildResult:
    """The built DUT image for ``board`` if it is current (or ``force``).

    Raises:
        UserError: missing or stale image (the reasons and `hkdeploy build --app mlperf` as the fix).
    """
    out = out_dir(params, board)
    reasons = stale_reasons(params, board)
    manifest = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).is_file() else None
    usable = manifest is not None and (out / manifest.get("binary", "")).is_file()
    if reasons and (not force or not usable):
        raise UserError(
            f"refusing to use the MLPerf DUT image for {board.name}: " + "; ".join(reasons),
            hint="run `hkdeploy build --app mlperf`" + ("; --force uses it anyway" if usable else ""),
        )
    assert manifest is not None
    return BuildResult(board, out, out / manifest["binary"], manifest)


def ensure_dut_sim(params: DeployParams) -> Path:
    """The virtual EVB's DUT binary for the current export and settings, built when missing or stale."""
    board = get_board("sim")
    if stale_reasons(params, board):
        return build_mlperf(params, "sim").binary
    manifest = json.loads((out_dir(params, board) / MANIFEST).read_text())
    return out_dir(params, board) / manifest["binary"]
