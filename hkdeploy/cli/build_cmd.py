"""``hkdeploy build``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig


@cli.command("build")
@with_params("build")
@BOARD
@click.option("--dry-run", is_flag=True, help="Print the build command, run nothing")
@click.option(
    "--app",
    type=click.Choice(["link", "mlperf"]),
    default="link",
    show_default=True,
    help="link: the hkdeploy firmware; mlperf: the MLPerf Tiny DUT image (the benchmark runner's protocol)",
)
def build_cmd(loaded: LoadedConfig, board: str | None, dry_run: bool, app: str) -> None:
    """Render the firmware project for the board from the export and build it with its platform."""
    from hkdeploy.console import info
    from hkdeploy.firmware.build import build

    result = build(loaded.params, board, dry_run=dry_run, app=app)
    if not dry_run:
        info(f"build: {result.binary} (manifest {result.out_dir / 'build_manifest.json'})")
