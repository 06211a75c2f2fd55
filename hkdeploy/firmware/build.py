"""``hkdeploy build``: render the firmware project for a board and build it.

The project is rendered into ``job_dir/firmware/<board>/project`` from the package's ``firmware/``
sources (the folders the board's platform names) and the export's headers (``model/``), so a build
never depends on the checkout it came from. The board's platform (``hkdeploy.platforms``) checks its
tools and builds: gcc for the virtual EVB, arm-none-eabi-gcc + upstream TFLM for QEMU, neuralSPOT's
make for a board. Every build records ``build_manifest.json`` (model hash, sources hash, toolchain,
SDK revision, binary hash, sizes); ``flash`` and the launchers refuse a binary whose manifest no
longer matches the export or the sources (stale binary). No TensorFlow here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hkdeploy import __version__
from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.contracts import MODEL_HEADERS, BuildManifest, load_build, load_export
from hkdeploy.errors import UserError
from hkdeploy.fsutil import write_json
from hkdeploy.paths import firmware_dir
from hkdeploy.platforms import platform_of, target_board
from hkdeploy.platforms.base import LINK, FirmwareApp
from hkdeploy.proc import Command, run

MANIFEST = "build_manifest.json"


@dataclass
class BuildResult:
    """A finished (or dry-run) build."""

    board: Board
    out_dir: Path
    binary: Path
    manifest: dict[str, Any]


def firmware_files(export_dir: Path, dirs: tuple[str, ...]) -> dict[str, bytes]:
    """The files of a project: the firmware/ subfolders ``dirs`` plus the export's headers under
    ``model/`` (relative path -> bytes), in a stable order."""
    fw = firmware_dir()
    files: dict[str, bytes] = {}
    for sub in dirs:
        root = fw / sub
        if not root.is_dir():
            from hkdeploy.errors import ToolError

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
        files[f"model/{name}"] = (export_dir / name).read_bytes()
    return dict(sorted(files.items()))


def project_files(params: DeployParams, board: Board, app: FirmwareApp = LINK) -> dict[str, bytes]:
    """Every file of the rendered project for ``board`` (its platform's folders, the app's, the
    export's headers, and the app's baked-in settings: a change there means a rebuild)."""
    files = firmware_files(params.export_dir, (*platform_of(board).firmware_dirs, *app.extra_dirs))
    if app.identity:
        files[f"model/{app.name}.json"] = json.dumps(dict(app.identity), sort_keys=True).encode()
    return dict(sorted(files.items()))


def resolve_app(params: DeployParams, board: Board, app: str | FirmwareApp) -> FirmwareApp:
    """The firmware app called ``app`` for ``board``: ``link`` (the hkdeploy link) or ``mlperf``."""
    if isinstance(app, FirmwareApp):
        return app
    if app == "link":
        return LINK
    if app == "mlperf":
        from hkdeploy.mlperf.build import mlperf_app

        return mlperf_app(params, board)
    raise UserError(f"unknown app {app!r}", hint="--app link (the hkdeploy firmware) or --app mlperf")


def out_dir(params: DeployParams, board: Board, app: FirmwareApp = LINK) -> Path:
    """Where a board's build of ``app`` goes: ``job_dir/firmware/<board>`` (``<board>-<app>`` for
    another app than the link, so both images live side by side)."""
    return params.firmware_dir / (board.name if app.is_link else f"{board.name}-{app.name}")


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
    try:
        for rel, data in files.items():
            target = stage / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    except BaseException:  # a full disk or Ctrl-C: no half-rendered project is left behind
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if dest.exists():
        dest.rename(old)
    stage.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


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
    params: DeployParams,
    board_name: str | None = None,
    *,
    dry_run: bool = False,
    app: str | FirmwareApp = "link",
) -> BuildResult:
    """Render and build ``app`` (the link firmware, or ``mlperf``: the MLPerf Tiny DUT image) for a
    board with its platform (see the module doc).

    Raises:
        UserError: no export, or an app the board cannot run. ToolError: toolchain/SDK missing or the
        build failed. CheckFailed: the firmware does not fit the board's MRAM/SRAM.
    """
    board = target_board(params, board_name)
    platform = platform_of(board)
    fw_app = resolve_app(params, board, app)
    export = load_export(params.export_dir, headers=True)
    if not dry_run:
        platform.preflight(params, board)
    out = out_dir(params, board, fw_app)
    files = project_files(params, board, fw_app)
    src_sha = sources_hash(files)
    build_id = f"hk-{src_sha[:12]}"
    log = params.job_dir / "logs" / "commands.log"
    manifest: dict[str, Any] = {
        "schema": "hkdeploy.build_manifest/1",
        "hkdeploy_version": __version__,
        "board": board.name,
        "platform": platform.name,
        "model_sha256": export.model.sha256,
        "sources_sha256": src_sha,
        "build_id": build_id,
    }
    if not fw_app.is_link:
        manifest.update(app=fw_app.name, **{fw_app.name: dict(fw_app.identity)})
    project = render_project(files, out / "project") if not dry_run else None
    built = platform.build(params, board, project, out, build_id, dry_run=dry_run, log=log, app=fw_app)
    if dry_run:
        return BuildResult(board, out, built.binary, manifest)
    manifest.update(built.extra, command=built.command, sizes=built.sizes)
    if platform.name == "host":
        limits = platform.limits(params, board)
        fit = export.board_fit
        info(
            f"build: virtual EVB emulating {limits.name}: model {fit.get('model_bytes', '?')} B of "
            f"{limits.app_bytes} B MRAM, arena {fit.get('arena_bytes', '?')} B of {limits.sram_bytes} B SRAM "
            "(enforced at run time)"
        )
    manifest.update(binary=built.binary.relative_to(out).as_posix(), binary_sha256=_sha256_file(built.binary))
    write_json(out / MANIFEST, manifest)
    return BuildResult(board, out, built.binary, manifest)


def manifest_stale_reasons(
    params: DeployParams, out: Path, files: dict[str, bytes], what: str, changed: str
) -> list[str]:
    """Why the build in ``out`` must not be used (empty: it is current): no manifest, the binary
    missing or changed, another model than the current export, or project ``files`` that differ from
    what it was built from (``what`` names the build, ``changed`` says what the last case means)."""
    manifest = load_build(out)
    if manifest is None:
        return [f"no {what} in {out}"]
    binary = out / (manifest.binary or "")
    if not manifest.binary or not binary.is_file():
        return [f"the binary {binary} is missing"]
    reasons = []
    if _sha256_file(binary) != manifest.binary_sha256:
        reasons.append(f"{binary.name} changed after the build")
    if manifest.model_sha256 != load_export(params.export_dir).model.sha256:
        reasons.append("it was built for another model than the current export")
    if manifest.sources_sha256 != sources_hash(files):
        reasons.append(changed)
    return reasons


def stale_reasons(params: DeployParams, board: Board, app: FirmwareApp = LINK) -> list[str]:
    """Why the built binary of ``app`` for ``board`` must not be used (empty: it is current)."""
    what = "build" if app.is_link else f"{app.label} build"
    return manifest_stale_reasons(
        params,
        out_dir(params, board, app),
        project_files(params, board, app),
        f"{what} for {board.name}",
        "the firmware sources or model headers changed since it was built"
        if app.is_link
        else f"the firmware sources, model headers or {app.name} settings changed since it was built",
    )


def current_build(
    params: DeployParams, board: Board, *, force: bool = False, app: FirmwareApp = LINK
) -> BuildResult:
    """The built ``app`` for ``board`` if it is current (or ``force``).

    Raises:
        UserError: missing or stale binary (the reasons and `hkdeploy build` as the fix).
    """
    out = out_dir(params, board, app)
    reasons = stale_reasons(params, board, app)
    manifest: BuildManifest | None = load_build(out)
    usable = manifest is not None and bool(manifest.binary) and (out / (manifest.binary or "")).is_file()
    if reasons and (not force or not usable):
        what = "firmware" if app.is_link else app.label
        cmd = "hkdeploy build" if app.is_link else f"hkdeploy build --app {app.name}"
        raise UserError(
            f"refusing to use the {what} for {board.name}: " + "; ".join(reasons),
            hint=f"run `{cmd}` (or `hkdeploy run`)" + ("; --force uses it anyway" if usable else ""),
        )
    assert manifest is not None and manifest.binary
    return BuildResult(board, out, out / manifest.binary, manifest.model_dump(by_alias=True))


def ensure_built(params: DeployParams, board: Board, app: FirmwareApp = LINK) -> Path:
    """The binary of ``app`` for ``board`` for the current export, built when missing or stale
    (platforms that launch their own devices use this)."""
    if stale_reasons(params, board, app):
        return build(params, board.name, app=app).binary
    return current_build(params, board, app=app).binary
