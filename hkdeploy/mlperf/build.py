"""``hkdeploy build --app mlperf``: the MLPerf Tiny DUT image for a board or the virtual EVB.

The DUT is a ``FirmwareApp`` (``mlperf_app``): the DUT front end (``firmware/dut``) in place of the
binary link core, its name / model id / energy mode baked in. ``hkdeploy.firmware.build`` builds it
with the board's own platform like the link firmware (rendered project, manifest, stale checks):
``host`` (gcc, ``-DHK_APP_MLPERF=1``), ``qemu`` (the emulated Cortex-M with upstream TFLM) or
``neuralspot`` (``HK_APP=mlperf``, always on the UART). Its output goes to
``job_dir/firmware/<board>-mlperf`` so the link firmware and the DUT image live side by side.
This module holds only what is the DUT's own: which boards can run it and its settings.
No TensorFlow here.
"""

from __future__ import annotations

from pathlib import Path

from hkdeploy.boards import Board, get_board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import UserError
from hkdeploy.firmware.build import BuildResult, build, current_build, ensure_built, stale_reasons
from hkdeploy.mlperf.firmware import DUT_SOURCES, HOST_DUT_BINARY, dut_defines, neuralspot_dut_vars
from hkdeploy.platforms import platform_of
from hkdeploy.platforms.base import FirmwareApp

APP = "mlperf"
PLATFORMS = ("host", "neuralspot", "qemu")


def mlperf_app(params: DeployParams, board: Board) -> FirmwareApp:
    """The DUT image as an app of ``board``'s platform.

    Raises:
        UserError: a platform without a DUT, energy mode where no timestamp GPIO exists, or a UART
        the neuralSPOT DUT cannot drive.
    """
    platform = platform_of(board)
    m = params.mlperf
    if platform.name not in PLATFORMS:
        raise UserError(
            f"the MLPerf DUT image is not available for {board.name} (platform {platform.name})",
            hint="build it for the virtual EVB (backend sim) or a neuralSPOT board",
        )
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
    from hkdeploy.contracts import load_export

    input_bytes = load_export(params.export_dir).model.input.bytes
    pairs = (d.split("=", 1) for d in dut_defines(m.dut_name(), m.model_id, m.energy))
    defines: tuple[tuple[str, str | int | None], ...] = tuple((k, v) for k, v in pairs)
    if platform.name == "qemu":
        defines += (("HK_DUT_INPUT_MAX", f"{input_bytes}u"),)
    # the DUT always talks over the UART (ns-uart): the runner expects a serial line at a fixed baud
    make_vars = (
        "HK_LINK=uart",
        *neuralspot_dut_vars(m.dut_name(), m.model_id, m.energy, board.mlperf_timestamp_pin),
    )
    return FirmwareApp(
        name=APP,
        front_end=DUT_SOURCES,
        extra_dirs=("dut",),
        identity=(("energy", m.energy), ("model_id", m.model_id), ("name", m.dut_name())),
        defines=defines,
        make_vars=make_vars,
        host_binary=HOST_DUT_BINARY,
        label="MLPerf DUT image",
    )


def build_mlperf(
    params: DeployParams, board_name: str | None = None, *, dry_run: bool = False
) -> BuildResult:
    """Render and build the DUT image (see the module doc; raises as ``firmware.build.build``)."""
    return build(params, board_name, dry_run=dry_run, app=APP)


def current_dut_build(params: DeployParams, board: Board, *, force: bool = False) -> BuildResult:
    """The built DUT image for ``board`` if it is current (or ``force``); UserError otherwise."""
    return current_build(params, board, force=force, app=mlperf_app(params, board))


def dut_stale_reasons(params: DeployParams, board: Board) -> list[str]:
    """Why the DUT image for ``board`` must not be used (empty: it is current)."""
    return stale_reasons(params, board, mlperf_app(params, board))


def ensure_dut(params: DeployParams, board: Board) -> Path:
    """The DUT binary of a platform that starts its own devices (virtual EVB, QEMU) for the current
    export and settings, built when missing or stale."""
    return ensure_built(params, board, mlperf_app(params, board))


def ensure_dut_sim(params: DeployParams) -> Path:
    """The virtual EVB's DUT binary for the current export and settings, built when missing or stale."""
    return ensure_dut(params, get_board("sim"))
