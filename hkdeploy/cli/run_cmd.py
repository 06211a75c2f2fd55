"""``hkdeploy run``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig


@cli.command("run")
@with_params("run")
@BOARD
@click.option("--port", "ports", multiple=True, help="Serial port/URL of a board (repeatable)")
@click.option(
    "--skip",
    multiple=True,
    type=click.Choice(["export", "build", "flash", "validate"]),
    help="Leave a stage out",
)
@click.option("--force", is_flag=True, help="Flash even a stale build")
def run_cmd(
    loaded: LoadedConfig, board: str | None, ports: tuple[str, ...], skip: tuple[str, ...], force: bool
) -> None:
    """The whole chain: export -> build -> flash (boards only) -> validate; stops at the first failure."""
    from hkdeploy.pipeline import run

    run(loaded.params, board=board, ports=list(ports), skip=skip, force=force)
