"""The ``host`` platform: the virtual EVB (the firmware's link core on Linux, TFLM via the runtime).

Built with gcc against the Python headers (its engine embeds CPython to run the tflite-micro
runtime's reference kernels), launched as processes this platform owns (``HostPort``), never
flashed. It enforces the memory limits of the board it emulates (the config's board, or the sim
file's ``emulate``). Its "cycles" are host nanoseconds: reports label them as host time of the
virtual EVB, never as the board's latency.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

from hkdeploy.boards import Board, board_for
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import ToolError
from hkdeploy.link import CORE_SOURCES
from hkdeploy.platforms.base import LINK, BuiltFirmware, Check, Counter, FirmwareApp, Platform
from hkdeploy.proc import Command, run

HOST_PORT_SOURCES = ("platform/host/hk_host_main.c", "platform/host/hk_engine_host.c", *CORE_SOURCES)
SIM_BINARY = "hk_host"
GCC_HINT = "apt-get install build-essential"
PYTHON_DEV_HINT = "apt-get install python3-dev (the headers of the Python that runs hkdeploy)"


def python_headers() -> Path | None:
    """The folder holding Python.h of this interpreter (None when the headers are missing)."""
    include = sysconfig.get_config_var("INCLUDEPY")
    return Path(include) if include and (Path(include) / "Python.h").exists() else None


def host_port_command(
    project: Path, out: Path, sources: tuple[str, ...] = HOST_PORT_SOURCES, defines: tuple[str, ...] = ()
) -> Command:
    """The gcc command that builds the virtual EVB from a rendered project (``project/model`` holds
    the export's headers)."""
    include = sysconfig.get_config_var("INCLUDEPY")
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{project / 'model'}", f"-I{include}"]
    argv += [f"-D{d}" for d in defines]
    argv += [str(project / src) for src in sources]
    argv += [f"-L{libdir}", f"-lpython{version}", f"-Wl,-rpath,{libdir}", "-lm", "-o", str(out)]
    return Command(argv, timeout=300, what="the virtual EVB build", hint=f"{GCC_HINT} python3-dev")


def build_virtual_evb(
    export_dir: Path,
    out: Path,
    *,
    arena_size: int | None = None,
    log: Path | None = None,
    defines: tuple[str, ...] = (),
) -> Path:
    """Render a virtual EVB project for the headers in ``export_dir`` into ``out/project`` and build
    ``out/hk_host`` with the same command as ``hkdeploy build`` (for tests and benchmarks that work on
    an export folder rather than a job). ``arena_size`` overrides the export's arena; ``defines``: more
    -D for test builds (e.g. ``HK_HOST_NO_COUNTER``, a test double with no counter)."""
    from hkdeploy.contracts import load_export
    from hkdeploy.firmware.build import firmware_files, render_project

    load_export(export_dir, headers=True)
    project = render_project(firmware_files(export_dir, HostPlatform.firmware_dirs), out / "project")
    binary = out / SIM_BINARY
    defines = ((f"HK_HOST_ARENA_SIZE={arena_size}u",) if arena_size else ()) + defines
    run(host_port_command(project, binary, defines=defines), log=log)
    return binary


def _define(name: str, value: str | int | None) -> str:
    return name if value is None else f"{name}={value}"


class HostPlatform(Platform):
    """The virtual EVB."""

    name = "host"
    needs_flash = False
    firmware_dirs = ("core", "engine", "protocol", "platform/host")

    def limits(self, params: DeployParams, board: Board) -> Board:
        configured = board_for(params.board)
        if configured.platform != self.name:
            return configured
        return board.limits()

    def counter(self, board: Board) -> Counter:
        return Counter(
            "host ns",
            "host time of the virtual EVB (x86 TFLM runtime), not the board's latency",
            real_time=False,
        )

    def preflight(self, params: DeployParams, board: Board) -> None:
        if shutil.which("gcc") is None:
            raise ToolError("gcc is not installed (needed for the virtual EVB)", hint=GCC_HINT)
        if python_headers() is None:
            raise ToolError("the Python headers (Python.h) are missing", hint=PYTHON_DEV_HINT)

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

        project = project or out / "project"
        binary = out / app.host_binary
        tmp = binary.with_name(binary.name + ".tmp")
        arena = params.firmware.arena_size
        defines = tuple(_define(k, v) for k, v in app.defines)
        defines += (f"HK_HOST_ARENA_SIZE={arena}u",) if arena else ()
        sources = HOST_PORT_SOURCES if app.is_link else (*HOST_PORT_SOURCES[:2], *app.front_end)
        cmd = host_port_command(project, tmp, sources=sources, defines=defines)
        if not app.is_link:
            cmd = dataclasses.replace(cmd, what=f"the virtual EVB {app.label} build")
        run(cmd, dry_run=dry_run, log=log, echo=False)
        if dry_run:
            return BuiltFirmware(binary, cmd.argv)
        tmp.replace(binary)
        limits = self.limits(params, board)
        return BuiltFirmware(
            binary,
            cmd.argv,
            binary_sizes("size", binary),
            {"emulates": limits.name, "toolchain": tool_version("gcc"), "neuralspot_revision": None},
        )

    def checks(self, params: DeployParams, board: Board, runner: str | None = None) -> list[Check]:
        from hkdeploy.doctor import tool_check

        headers = python_headers()
        return [
            tool_check("C compiler (virtual EVB)", "gcc", GCC_HINT),
            Check(
                "Python headers",
                headers is not None,
                str(headers) if headers else "Python.h not found",
                PYTHON_DEV_HINT,
            ),
        ]

    @contextlib.contextmanager
    def launch(self, params: DeployParams, board: Board, count: int, log_dir: Path) -> Iterator[list[str]]:
        from hkdeploy.firmware.build import ensure_built
        from hkdeploy.platforms.host_process import HostPort

        binary = ensure_built(params, board)
        limits = self.limits(params, board)
        log_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            urls = []
            for i in range(max(1, count)):
                hp = HostPort(
                    binary,
                    f"sim:{limits.name}",
                    limits.app_bytes,
                    limits.sram_bytes,
                    baud=params.link.baud if params.link.pace else 0,
                    log_path=log_dir / f"hostport{i}.log",
                )
                stack.enter_context(hp)
                urls.append(hp.url)
            yield urls
