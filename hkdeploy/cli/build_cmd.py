"""``hkdeploy build``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig


@cli.command("build")
@with_params("build")
@BOARD
@click.option("--dry-run", is_flag=True, help="Print the build command, run nothing")
def build_cmd(loaded: LoadedConfig, board: str | None, dry_run: bool) -> None:
    """Render the firmware project for the board from the export and build it with its platform."""
    from hkdeploy.build import build
    from hkdeploy.console import info

    result = build(loaded.params, board, dry_run=dry_run)
    if not dry_run:
        info(f"build: {result.binary} (manifest {result.out_dir / 'build_manifest.json'})")
