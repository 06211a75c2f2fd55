"""``hkdeploy build``: render the firmware project for a board and build it.

The project is rendered into ``job_dir/firmware/<board>/project`` from the package's ``firmware/``
sources and the export's headers (``model/``), so a build never depends on the checkout it came from.
``sim`` (the virtual EVB) builds the host port with gcc; a real board builds the neuralSPOT app with
neuralSPOT's make (``NEURALSPOT_ROOT``). Every build records ``build_manifest.json`` (model hash,
sources hash, toolchain, neuralSPOT revision, binary hash, sizes); ``flash`` refuses a binary whose
manifest no longer matches the export or the sources (stale binary). No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hkdeploy import __version__
from hkdeploy.boards import Board, board_for, get_board
from hkdeploy.console import info
from hkdeploy.errors import CheckFailed, ToolError, UserError
from hkdeploy.fsutil import write_json
from hkdeploy.link import CORE_SOURCES
from hkdeploy.params import DeployParams
from hkdeploy.paths import firmware_dir
from hkdeploy.proc import Command, git_head, run

MANIFEST = "build_manifest.json"
MODEL_HEADERS = ("model_buffer.h", "model_ops.h", "model_config.h")
HOST_PORT_SOURCES = ("platform/host/hk_host_main.c", "platform/host/hk_engine_host.c", *CORE_SOURCES)
SIM_BINARY = "hk_host"
FIRMWARE_NAME = "hkdeploy_fw"  # the neuralSPOT app's output: build/<FIRMWARE_NAME>.bin/.axf

ARM_TOOLCHAIN_HINT = (
    "install the Arm GNU toolchain: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
    "libstdc++-arm-none-eabi-newlib (or download it from developer.arm.com and set firmware.toolchain_dir)"
)
SDK_HINT = (
    "clone the SDK (git clone https://github.com/AmbiqAI/neuralSPOT) and set NEURALSPOT_ROOT=/path/to/neuralSPOT "
    "or firmware.neuralspot_root in the config"
)


@dataclass
class BuildResult:
    """A finished (or dry-run) build."""

    board: Board
    out_dir: Path
    binary: Path
    manifest: dict[str, Any]


def target_board(params: DeployParams, board: str | None = None) -> Board:
    """The board a build is for: ``--board``, else ``sim`` for ``backend: sim``, else the config's board."""
    if board:
        return get_board(board)
    configured = board_for(params.board)
    if params.backend == "sim" and not configured.is_sim:
        return get_board("sim")
    return configured


def emulated(params: DeployParams, board: Board) -> Board:
    """The board whose limits apply: for ``sim``, the config's board (or the sim file's default)."""
    if not board.is_sim:
        return board
    configured = board_for(params.board)
    return configured if not configured.is_sim else board.limits()


def _export_sha(params: DeployParams) -> str:
    report = params.export_dir / "export_report.json"
    missing = [h for h in MODEL_HEADERS if not (params.export_dir / h).is_file()]
    if not report.is_file() or missing:
        raise UserError(
            f"no export in {params.export_dir}", hint="run `hkdeploy export` first (or `hkdeploy run`)"
        )
    return str(json.loads(report.read_text())["model"]["sha256"])


def project_files(params: DeployParams, board: Board) -> dict[str, bytes]:
    """Every file of the rendered project (relative path -> bytes), in a stable order."""
    fw = firmware_dir()
    platform = "platform/host" if board.is_sim else "platform/neuralspot"
    files: dict[str, bytes] = {}
    for sub in ("core", "engine", "protocol", platform):
        root = fw / sub
        if not root.is_dir():
            raise ToolError(f"firmware sources missing: {root}", hint="reinstall hkdeploy")
        for path in sorted(root.rglob("*")):
            rel_parts = path.relative_to(fw).parts
            if (
                path.is_file()
                and not {"__pycache__", "build"} & set(rel_parts)
                and path.suffix not in (".o", ".pyc")
            ):
                files[path.relative_to(fw).as_posix()] = path.read_bytes()
    for name in MODEL_HEADERS:
        files[f"model/{name}"] = (params.export_dir / name).read_bytes()
    return dict(sorted(files.items()))


def sources_hash(files: dict[str, bytes]) -> str:
    """SHA-256 over the project's paths and contents."""
    h = hashlib.sha256()
    for rel, data in sorted(files.items()):
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def render_project(files: dict[str, bytes], dest: Path) -> Path:
    """Write the project into ``dest`` atomically (a staged folder replaces the old one)."""
    stage = dest.with_name(dest.name + ".staging")
    old = dest.with_name(dest.name + ".old")
    for p in (stage, old):
        shutil.rmtree(p, ignore_errors=True)
    for rel, data in files.items():
        target = stage / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    if dest.exists():
        dest.rename(old)
    stage.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def sim_command(project: Path, out: Path) -> Command:
    """The gcc command that builds the host port (the virtual EVB) from a rendered project."""
    include = sysconfig.get_config_var("INCLUDEPY")
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{project / 'model'}", f"-I{include}"]
    argv += [str(project / src) for src in HOST_PORT_SOURCES]
    argv += [f"-L{libdir}", f"-lpython{version}", f"-Wl,-rpath,{libdir}", "-lm", "-o", str(out)]
    return Command(
        argv, timeout=300, what="the host port build", hint="apt-get install build-essential python3-dev"
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


def neuralspot_revision(root: Path) -> str | None:
    """The SDK's git commit, if it is a git checkout."""
    return git_head(root)


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
    if params.firmware.toolchain_dir:
        argv.append(f"TOOLCHAIN_DIR={params.firmware.toolchain_dir}")
    return Command(argv, timeout=1800, what="the neuralSPOT build", hint="run with -vv to see make's output")


def tool_version(tool: str) -> str | None:
    """The first line of ``tool --version`` (None if it is not installed)."""
    try:
        proc = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = proc.stdout.strip().splitlines()
    return lines[0] if proc.returncode == 0 and lines else None


def binary_sizes(size_tool: str, binary: Path) -> dict[str, int]:
    """text/data/bss of an ELF file (berkeley format of binutils' size)."""
    res = run(Command([size_tool, "-B", str(binary)], timeout=30, what="size"))
    fields = res.stdout.strip().splitlines()[-1].split()
    return {"text": int(fields[0]), "data": int(fields[1]), "bss": int(fields[2])}


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(
    params: DeployParams, board_name: str | None = None, *, dry_run: bool = False, app: str = "link"
) -> BuildResult:
    """Render and build the firmware for a board (see the module doc).

    ``app="mlperf"`` builds the MLPerf Tiny DUT image instead (``hkdeploy.mlperf.build``).

    Raises:
        UserError: no export. ToolError: toolchain/SDK missing or the build failed.
        CheckFailed: the firmware does not fit the board's MRAM/SRAM.
    """
    if app == "mlperf":
        from hkdeploy.mlperf.build import build_mlperf

        return build_mlperf(params, board_name, dry_run=dry_run)
    if app != "link":
        raise UserError(f"unknown app {app!r}", hint="--app link (the hkdeploy firmware) or --app mlperf")
    board = target_board(params, board_name)
    model_sha = _export_sha(params)
    out = params.firmware_dir / board.name
    files = project_files(params, board)
    src_sha = sources_hash(files)
    build_id = f"hk-{src_sha[:12]}"
    log = params.job_dir / "logs" / "commands.log"
    manifest: dict[str, Any] = {
        "schema": "hkdeploy.build_manifest/1",
        "hkdeploy_version": __version__,
        "board": board.name,
        "model_sha256": model_sha,
        "sources_sha256": src_sha,
        "build_id": build_id,
    }
    if board.is_sim:
        limits = emulated(params, board)
        if not dry_run and shutil.which("gcc") is None:
            raise ToolError(
                "gcc is not installed (needed for the virtual EVB)", hint="apt-get install build-essential"
            )
        include = sysconfig.get_config_var("INCLUDEPY")
        if not dry_run and (not include or not (Path(include) / "Python.h").exists()):
            raise ToolError("the Python headers (Python.h) are missing", hint="apt-get install python3-dev")
        project = render_project(files, out / "project") if not dry_run else out / "project"
        binary = out / SIM_BINARY
        cmd = sim_command(project, binary.with_name(binary.name + ".tmp"))
        run(cmd, dry_run=dry_run, log=log, echo=False)
        if dry_run:
            return BuildResult(board, out, binary, manifest)
        binary.with_name(binary.name + ".tmp").replace(binary)
        manifest.update(
            emulates=limits.name,
            toolchain=tool_version("gcc"),
            neuralspot_revision=None,
            command=cmd.argv,
            sizes=binary_sizes("size", binary),
        )
        fit = json.loads((params.export_dir / "export_report.json").read_text()).get("board_fit", {})
        info(
            f"build: virtual EVB emulating {limits.name}: model {fit.get('model_bytes', '?')} B of "
            f"{limits.app_bytes} B MRAM, arena {fit.get('arena_bytes', '?')} B of {limits.sram_bytes} B SRAM "
            "(enforced at run time)"
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
        cmd = neuralspot_command(params, board, project, build_dir, sdk, build_id)
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
            command=cmd.argv,
            sizes=sizes,
        )
        flash_used, ram_used = sizes["text"] + sizes["data"], sizes["data"] + sizes["bss"]
        info(
            f"build: {board.name}: flash {flash_used} B of {board.app_bytes} B, "
            f"RAM {ram_used} B of {board.sram_bytes} B (text {sizes['text']}, data {sizes['data']}, bss {sizes['bss']})"
        )
        if (board.app_bytes and flash_used > board.app_bytes) or (
            board.sram_bytes and ram_used > board.sram_bytes
        ):
            raise CheckFailed(
                f"the firmware does not fit {board.name}",
                hint="use a smaller model or a board with more memory",
            )
    manifest.update(binary=binary.relative_to(out).as_posix(), binary_sha256=_sha256_file(binary))
    write_json(out / MANIFEST, manifest)
    return BuildResult(board, out, binary, manifest)


def stale_reasons(params: DeployParams, board: Board) -> list[str]:
    """Why the built binary for ``board`` must not be used (empty: it is current)."""
    out = params.firmware_dir / board.name
    path = out / MANIFEST
    if not path.is_file():
        return [f"no build for {board.name} in {out}"]
    manifest = json.loads(path.read_text())
    reasons = []
    binary = out / manifest.get("binary", "")
    if not binary.is_file():
        return [f"the binary {binary} is missing"]
    if _sha256_file(binary) != manifest.get("binary_sha256"):
        reasons.append(f"{binary.name} changed after the build")
    if manifest.get("model_sha256") != _export_sha(params):
        reasons.append("it was built for another model than the current export")
    if manifest.get("sources_sha256") != sources_hash(project_files(params, board)):
        reasons.append("the firmware sources or model headers changed since it was built")
    return reasons


def current_build(params: DeployParams, board: Board, *, force: bool = False) -> BuildResult:
    """The built firmware for ``board`` if it is current (or ``force``).

    Raises:
        UserError: missing or stale binary (the reasons and `hkdeploy build` as the fix).
    """
    out = params.firmware_dir / board.name
    reasons = stale_reasons(params, board)
    manifest = json.loads((out / MANIFEST).read_text()) if (out / MANIFEST).is_file() else None
    usable = manifest is not None and (out / manifest.get("binary", "")).is_file()
    if reasons and (not force or not usable):
        raise UserError(
            f"refusing to use the firmware for {board.name}: " + "; ".join(reasons),
            hint="run `hkdeploy build` (or `hkdeploy run`)" + ("; --force uses it anyway" if usable else ""),
        )
    assert manifest is not None
    return BuildResult(board, out, out / manifest["binary"], manifest)


def ensure_sim(params: DeployParams) -> Path:
    """The virtual EVB binary for the current export, built when missing or stale."""
    board = get_board("sim")
    if stale_reasons(params, board):
        return build(params, "sim").binary
    return current_build(params, board).binary
