"""``hkdeploy validate``."""

from __future__ import annotations

import click

from hkdeploy.cli import BOARD, cli, require, with_params
from hkdeploy.cli.lab_options import lab_options
from hkdeploy.config import LoadedConfig


@cli.command("validate")
@with_params("validate")
@click.option(
    "--port", "ports", multiple=True, help="Serial port/URL of a board (repeat to shard over several)"
)
@click.option(
    "--resume", is_flag=True, help="Continue an interrupted run from job_dir/validate/results.jsonl"
)
@click.option(
    "--devices",
    "--sim-boards",
    "devices",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Devices to start and shard over, for targets that start their own (virtual EVB, QEMU)",
)
@BOARD
@lab_options()
def validate_cmd(
    loaded: LoadedConfig,
    ports: tuple[str, ...],
    resume: bool,
    devices: int,
    board: str | None,
    places: tuple[str, ...],
    place_tags: tuple[str, ...],
) -> None:
    """Stream the export's test frames to the board(s) and report accuracy, agreement and latency."""
    from hkdeploy.validate import validate

    if places or place_tags:
        from hkdeploy.lab.places import lab_params, lab_ports, parse_tags

        require(not ports, "--port and --place/--places don't mix", hint="use one or the other")
        params = lab_params(loaded.params)
        with lab_ports(params, list(places), parse_tags(place_tags)) as lab:
            validate(params, lab.urls, resume=resume, board=board, guard=lab.guard)
        return
    validate(loaded.params, list(ports), resume=resume, sim_boards=devices, board=board)
