"""``hkdeploy run``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, require, with_params
from hkdeploy.cli.lab_options import lab_options
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
@lab_options()
def run_cmd(
    loaded: LoadedConfig,
    board: str | None,
    ports: tuple[str, ...],
    skip: tuple[str, ...],
    force: bool,
    places: tuple[str, ...],
    place_tags: tuple[str, ...],
) -> None:
    """The whole chain: export -> build -> flash (boards only) -> validate; stops at the first failure.

    With --place/--places the places are acquired first and held for the whole chain; each place's
    board is flashed through its exporter host (labgrid's flash-script driver, docs/lab.md)."""
    from hkdeploy.run import run

    if places or place_tags:
        from hkdeploy.lab.places import lab_params, lab_ports, parse_tags

        require(not ports, "--port and --place/--places don't mix", hint="use one or the other")
        params = lab_params(loaded.params)
        with lab_ports(params, list(places), parse_tags(place_tags)) as lab:
            run(params, board=board, ports=lab.urls, skip=skip, force=force, lab=lab)
        return
    run(loaded.params, board=board, ports=list(ports), skip=skip, force=force)
