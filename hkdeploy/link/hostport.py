"""The virtual EVB: build the host port for an export and run it as a managed process.

The host port is the firmware's own link core built for Linux with gcc; its UART is a pty and its
engine runs TFLM's reference kernels through the tflite-micro runtime (embedded CPython). It
enforces the memory limits of the board it emulates. ``HostPort`` starts it in its own process
group and always stops it (context manager, atexit), so no stray process outlives a run or a crash.
"""

from __future__ import annotations

import atexit
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from types import TracebackType

from hkdeploy.errors import DeviceError, ToolError
from hkdeploy.link import CORE_SOURCES
from hkdeploy.paths import firmware_dir

HOST_SOURCES = (
    "platform/host/hk_host_main.c",
    "platform/host/hk_engine_host.c",
    *CORE_SOURCES,
)
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0


def build_command(export_dir: Path, out: Path, arena_override: int | None = None) -> list[str]:
    """The gcc command line that builds the host port for the headers in ``export_dir``."""
    include = sysconfig.get_config_var("INCLUDEPY")
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info.major}.{sys.version_info.minor}"
    fw = firmware_dir()
    cmd = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{export_dir}", f"-I{include}"]
    if arena_override is not None:
        cmd.append(f"-DHK_HOST_ARENA_SIZE={arena_override}u")
    cmd += [str(fw / src) for src in HOST_SOURCES]
    cmd += [f"-L{libdir}", f"-lpython{version}", f"-Wl,-rpath,{libdir}", "-lm", "-o", str(out)]
    return cmd


def build_host_port(
    export_dir: Path, out: Path, arena_override: int | None = None, timeout: float = 300
) -> Path:
    """Compile the host port; returns the binary path.

    Raises:
        ToolError: gcc or the Python headers are missing, or compilation failed.
    """
    for name in ("model_buffer.h", "model_config.h"):
        if not (export_dir / name).is_file():
            raise ToolError(f"{export_dir / name} is missing", hint="run `hkdeploy export` first")
    if shutil.which("gcc") is None:
        raise ToolError("gcc is not installed", hint="apt-get install build-essential")
    include = sysconfig.get_config_var("INCLUDEPY")
    if not include or not (Path(include) / "Python.h").exists():
        raise ToolError("the Python headers (Python.h) are missing", hint="apt-get install python3-dev")
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        build_command(export_dir, out, arena_override),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        raise ToolError(
            f"building the host port failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}",
            hint="run with -vv to see the compiler output; check that the export's headers are complete",
        )
    return out


_LIVE: set[int] = set()


def _kill_all() -> None:
    for pgid in list(_LIVE):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _LIVE.discard(pgid)


atexit.register(_kill_all)


class HostPort:
    """A running host port. Use as a context manager; ``url`` is its pty for pyserial.

    Args:
        binary: the built host port.
        board: name reported in HELLO (e.g. ``sim:apollo4p_evb``).
        mram_bytes / sram_bytes: the emulated board's limits (None = unlimited).
        baud: pace both directions as an 8N1 UART at this rate (0 = unpaced).
        log_path: where its stderr goes (TFLM runtime messages).
    """

    def __init__(
        self,
        binary: Path,
        board: str = "sim",
        mram_bytes: int | None = None,
        sram_bytes: int | None = None,
        baud: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.binary = binary
        self.args = ["--board", board, "--baud", str(baud)]
        if mram_bytes:
            self.args += ["--mram-bytes", str(mram_bytes)]
        if sram_bytes:
            self.args += ["--sram-bytes", str(sram_bytes)]
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> HostPort:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([*site.getsitepackages(), *sys.path[1:]])}
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(self.binary), *self.args],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,  # own process group: stop() kills everything it started
        )
        _LIVE.add(self.proc.pid)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout], [], [], max(left, 0))
            if not ready or self.proc.poll() is not None:
                self.stop()
                raise DeviceError(
                    f"the host port did not start within {START_TIMEOUT_S:.0f} s",
                    hint=f"see its log{f' {self.log_path}' if self.log_path else ''}; rebuild with hkdeploy build",
                )
            line += os.read(self.proc.stdout.fileno(), 1)
        self.url = line.decode().split(" ", 1)[1].strip()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def press_reset(self) -> None:
        """The board's reset button: engine and link restart as after power-on (SIGUSR1)."""
        if self.proc is None:
            raise DeviceError("the host port is not running")
        os.kill(self.proc.pid, signal.SIGUSR1)

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL after a bounded wait."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        _LIVE.discard(pgid)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self) -> HostPort:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
