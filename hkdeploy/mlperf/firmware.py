"""How the MLPerf Tiny DUT image is compiled.

The virtual EVB in DUT mode is the host port's main (``platform/host/hk_host_main.c``) built with
``-DHK_APP_MLPERF=1`` and the DUT front end (``dut/*.c``) instead of the binary link core. The
neuralSPOT app takes ``HK_APP=mlperf`` and the ``HK_DUT_*`` make variables. No TensorFlow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from hkdeploy.errors import ToolError
from hkdeploy.mlperf import runner_baud
from hkdeploy.paths import firmware_dir

DUT_SOURCES = ("dut/hk_dut.c", "dut/hk_dut_log.c")
HOST_DUT_SOURCES = ("platform/host/hk_host_main.c", "platform/host/hk_engine_host.c", *DUT_SOURCES)


def dut_defines(name: str, model_id: str, energy: bool) -> list[str]:
    """The -D flags of a DUT build (name and id are checked by the config: no quotes in them)."""
    return [
        "-DHK_APP_MLPERF=1",
        f'-DHK_DUT_NAME="{name}"',
        f'-DHK_DUT_MODEL_ID="{model_id}"',
        f"-DHK_DUT_ENERGY={1 if energy else 0}",
    ]


def host_dut_argv(fw_root: Path, model_dir: Path, out: Path, defines: list[str]) -> list[str]:
    """gcc's command line for the virtual EVB in DUT mode (``fw_root``: a firmware/ tree)."""
    include = sysconfig.get_config_var("INCLUDEPY")
    libdir = sysconfig.get_config_var("LIBDIR")
    version = sysconfig.get_config_var("LDVERSION") or f"{sys.version_info.major}.{sys.version_info.minor}"
    argv = [
        "gcc",
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        *defines,
        f"-I{model_dir}",
        f"-I{include}",
    ]
    argv += [str(fw_root / src) for src in HOST_DUT_SOURCES]
    argv += [f"-L{libdir}", f"-lpython{version}", f"-Wl,-rpath,{libdir}", "-lm", "-o", str(out)]
    return argv


def build_host_dut(
    export_dir: Path,
    out: Path,
    *,
    name: str = "hkdeploy-custom",
    model_id: str = "custom",
    energy: bool = False,
    timeout: float = 300,
) -> Path:
    """Compile the virtual EVB's DUT from this checkout's firmware/ and an export; returns ``out``.

    Raises:
        ToolError: gcc or the Python headers are missing, or compilation failed.
    """
    for header in ("model_buffer.h", "model_config.h"):
        if not (export_dir / header).is_file():
            raise ToolError(f"{export_dir / header} is missing", hint="run `hkdeploy export` first")
    if shutil.which("gcc") is None:
        raise ToolError("gcc is not installed", hint="apt-get install build-essential")
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = host_dut_argv(firmware_dir(), export_dir, out, dut_defines(name, model_id, energy))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ToolError(
            "building the virtual EVB's DUT failed: "
            + (proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else str(proc.returncode)),
            hint="apt-get install build-essential python3-dev; check that the export's headers are complete",
        )
    return out


def neuralspot_dut_vars(name: str, model_id: str, energy: bool, timestamp_pin: int | None) -> list[str]:
    """The make variables that turn the neuralSPOT app into the DUT (firmware/platform/neuralspot)."""
    baud = runner_baud(model_id)["energy" if energy else "performance"]
    argv = [
        "HK_APP=mlperf",
        f"HK_DUT_NAME={name}",
        f"HK_DUT_MODEL_ID={model_id}",
        f"HK_DUT_ENERGY={1 if energy else 0}",
        f"HK_DUT_BAUD={baud}",
    ]
    if timestamp_pin is not None:
        argv.append(f"HK_DUT_TS_PIN={timestamp_pin}")
    return argv
