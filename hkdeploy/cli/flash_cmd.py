"""``hkdeploy flash``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig


@cli.command("flash")
@with_params("flash")
@BOARD
@click.option("--runner", help="Flash runner (default: runner.name in the config: jlink or pyocd)")
@click.option("--serial", "serial_number", help="Serial number of the probe (several attached)")
@click.option("--erase/--no-erase", default=None, help="Erase the whole chip first")
@click.option("--reset/--no-reset", default=None, help="Reset and start the program after writing")
@click.option("--force", is_flag=True, help="Flash even if the build is stale (its manifest does not match)")
@click.option("--dry-run", is_flag=True, help="Print the commands, run nothing")
def flash_cmd(
    loaded: LoadedConfig,
    board: str | None,
    runner: str | None,
    serial_number: str | None,
    erase: bool | None,
    reset: bool | None,
    force: bool,
    dry_run: bool,
) -> None:
    """Write the built firmware to the board (J-Link or pyOCD); refuses a stale binary."""
    from hkdeploy.flash import flash

    flash(
        loaded.params,
        board,
        runner=runner,
        serial_number=serial_number,
        erase=erase,
        reset=reset,
        force=force,
        dry_run=dry_run,
    )
