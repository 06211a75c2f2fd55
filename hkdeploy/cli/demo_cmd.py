"""``hkdeploy demo``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, require, with_params
from hkdeploy.cli.lab_options import lab_options
from hkdeploy.config import LoadedConfig


@cli.command("demo")
@with_params("demo")
@click.option("--backend", type=click.Choice(["pc", "sim", "evb"]), help="Where to run (default: backend)")
@click.option("--port", help="Serial port/URL of the board (backend evb)")
@BOARD
@lab_options(multiple=False)
def demo_cmd(
    loaded: LoadedConfig,
    backend: str | None,
    port: str | None,
    board: str | None,
    places: str | None,
    place_tags: tuple[str, ...],
) -> None:
    """Run consecutive frames of one record live; writes demo.html and demo.png."""
    from hkdeploy.demo import demo

    if places or place_tags:
        from hkdeploy.lab.places import lab_params, lab_ports, parse_tags

        require(not port and backend in (None, "evb"), "--place needs the evb backend and no --port")
        params = lab_params(loaded.params)
        with lab_ports(params, [places] if places else [], parse_tags(place_tags), limit=1) as lab:
            demo(params, "evb", lab.urls[0], board)
        return
    demo(loaded.params, backend, port, board)
