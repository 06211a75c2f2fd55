"""``hkdeploy flash``: write the built firmware to the board with a runner (jlink or pyocd).

Refuses a binary that is missing or stale (its build manifest no longer matches the export or the
firmware sources) unless ``force``. Platforms whose devices load the build themselves (the virtual
EVB, the emulated Cortex-M) have nothing to flash.
"""

from __future__ import annotations

from dataclasses import dataclass

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info
from hkdeploy.firmware.build import current_build
from hkdeploy.flash.runners import FlashOptions, Runner, RunnerFactory
from hkdeploy.platforms import platform_of, target_board
from hkdeploy.proc import Result


@dataclass
class FlashResult:
    board: Board
    runner: str | None
    results: list[Result]
    skipped: bool = False


def make_runner(params: DeployParams, board: Board, name: str | None = None, **overrides: object) -> Runner:
    """The configured runner (``runner.name``/``runner.params``), command-line ``overrides`` winning."""
    cls = RunnerFactory.get(name or params.runner.name, allow_import=True)
    return cls(board, FlashOptions.from_params(dict(params.runner.params), **overrides))


def flash(
    params: DeployParams,
    board_name: str | None = None,
    *,
    runner: str | None = None,
    serial_number: str | None = None,
    erase: bool | None = None,
    reset: bool | None = None,
    force: bool = False,
    dry_run: bool = False,
    app: str = "link",
) -> FlashResult:
    """Flash the current build of the target board (``app="mlperf"``: its MLPerf Tiny DUT image).

    Raises:
        UserError: no build or a stale one (without ``force``); a runner option it cannot do.
        ToolError: the runner's tool is missing. DeviceError: the flash failed.
    """
    board = target_board(params, board_name)
    if not platform_of(board).needs_flash:
        info(f"flash: nothing to flash for {board.name} (its device loads the build when it starts)")
        return FlashResult(board, None, [], skipped=True)
    if app == "mlperf":
        from hkdeploy.mlperf.build import current_dut_build

        built = current_dut_build(params, board, force=force)
    else:
        built = current_build(params, board, force=force)
    r = make_runner(params, board, runner, serial_number=serial_number, erase=erase, reset=reset)
    results = r.flash(
        built.binary, built.out_dir, dry_run=dry_run, log=params.job_dir / "logs" / "commands.log"
    )
    if not dry_run:
        info(f"flash: {built.binary.name} written to {board.name} at 0x{r.address():X} with {r.name}")
    return FlashResult(board, r.name, results)
