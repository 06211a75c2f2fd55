"""How the MLPerf Tiny DUT image is compiled.

The virtual EVB in DUT mode is the host port's main (``platform/host/hk_host_main.c``) built with
``-DHK_APP_MLPERF=1`` and the DUT front end (``dut/*.c``) instead of the binary link core. The
neuralSPOT app takes ``HK_APP=mlperf`` and the ``HK_DUT_*`` make variables. No TensorFlow.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from hkdeploy.errors import ToolError
from hkdeploy.mlperf import runner_baud
from hkdeploy.proc import Command, run

DUT_SOURCES = ("dut/hk_dut.c", "dut/hk_dut_log.c")
HOST_DUT_SOURCES = ("platform/host/hk_host_main.c", "platform/host/hk_engine_host.c", *DUT_SOURCES)
HOST_DUT_BINARY = "hk_dut_host"


def dut_defines(name: str, model_id: str, energy: bool) -> tuple[str, ...]:
    """The defines of a DUT build (name and id are checked by the config: no quotes in them)."""
    return (
        "HK_APP_MLPERF=1",
        f'HK_DUT_NAME="{name}"',
        f'HK_DUT_MODEL_ID="{model_id}"',
        f"HK_DUT_ENERGY={1 if energy else 0}",
    )


def host_dut_command(project: Path, out: Path, defines: tuple[str, ...]) -> Command:
    """gcc's command for the virtual EVB in DUT mode from a rendered project (the host platform's
    compile line with the DUT front end in place of the link core)."""
    from hkdeploy.platforms.host import host_port_command

    cmd = host_port_command(project, out, sources=HOST_DUT_SOURCES, defines=defines)
    return dataclasses.replace(cmd, what="the virtual EVB DUT build")


def build_host_dut(
    export_dir: Path,
    out: Path,
    *,
    name: str = "hkdeploy-custom",
    model_id: str = "custom",
    energy: bool = False,
    log: Path | None = None,
) -> Path:
    """Render a virtual EVB DUT project for the headers in ``export_dir`` into ``out/project`` and build
    ``out/hk_dut_host`` with the command ``hkdeploy build --app mlperf`` uses (for tests that work on
    an export folder rather than a job). Returns the binary.

    Raises:
        UserError: the export is incomplete. ToolError: gcc/Python headers missing or the build failed.
    """
    from hkdeploy.contracts import load_export
    from hkdeploy.firmware.build import firmware_files, render_project
    from hkdeploy.platforms.host import GCC_HINT, PYTHON_DEV_HINT, HostPlatform, python_headers

    load_export(export_dir, headers=True)
    if shutil.which("gcc") is None:
        raise ToolError("gcc is not installed (needed for the virtual EVB)", hint=GCC_HINT)
    if python_headers() is None:
        raise ToolError("the Python headers (Python.h) are missing", hint=PYTHON_DEV_HINT)
    project = render_project(
        firmware_files(export_dir, (*HostPlatform.firmware_dirs, "dut")), out / "project"
    )
    binary = out / HOST_DUT_BINARY
    run(host_dut_command(project, binary, dut_defines(name, model_id, energy)), log=log)
    return binary


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
