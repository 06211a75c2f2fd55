"""``hkdeploy validate``."""

from __future__ import annotations

import click

from hkdeploy.cli import cli, with_params
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
@click.option(
    "--board", default=None, help="Target board (default: the config's; `hkdeploy boards` lists them)"
)
def validate_cmd(
    loaded: LoadedConfig, ports: tuple[str, ...], resume: bool, devices: int, board: str | None
) -> None:
    """Stream the export's test frames to the board(s) and report accuracy, agreement and latency."""
    from hkdeploy.validate import validate

    validate(loaded.params, list(ports), resume=resume, sim_boards=devices, board=board)
