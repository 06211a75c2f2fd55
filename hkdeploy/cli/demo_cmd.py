"""``hkdeploy demo``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, with_params
from hkdeploy.config import LoadedConfig


@cli.command("demo")
@with_params("demo")
@click.option("--backend", type=click.Choice(["pc", "sim", "evb"]), help="Where to run (default: backend)")
@click.option("--port", help="Serial port/URL of the board (backend evb)")
@BOARD
def demo_cmd(loaded: LoadedConfig, backend: str | None, port: str | None, board: str | None) -> None:
    """Run consecutive frames of one record live; writes demo.html and demo.png."""
    from hkdeploy.demo import demo

    demo(loaded.params, backend, port, board)
