"""``hkdeploy config show | schema | check``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from hkdeploy.cli import cli, common_options, load_params_from_ctx, warn_config_notes
from hkdeploy.config import load_params, read_config_file
from hkdeploy.config.heartkit import apply_quirks, is_heartkit_config
from hkdeploy.config.params import DeployParams
from hkdeploy.console import info, stdout
from hkdeploy.errors import ConfigError
from hkdeploy.fsutil import write_text


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
    warn_config_notes(loaded)
    p = loaded.params
    info(
        f"{file}: OK — {p.name}: {p.num_classes} classes, frames {p.frame_size} @ {p.sampling_rate} Hz, "
        f"quantization {p.quantization.format if p.quantization.enabled else 'float32'}, board {p.board.name}"
        + (" (HeartKit config)" if loaded.heartkit else "")
    )


def _dump(data: dict[str, Any], suffix: str) -> str:
    if suffix.lower() == ".json":
        return json.dumps(data, indent=4, ensure_ascii=False) + "\n"
    import yaml

    return str(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@config_group.command("migrate")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the clean config here (default: print it on stdout)",
)
def migrate(file: Path, output: Path | None) -> None:
    """Write FILE with its HeartKit quirks fixed; one '# ...' line per change (on stderr with no -o).

    The result is still a valid HeartKit config (training fields are kept) and loads in hkdeploy with
    no quirk warning. The clean config is validated before it is written.
    """
    raw = read_config_file(file)
    changes = apply_quirks(raw) if is_heartkit_config(raw) else []
    text = _dump(raw, (output or file).suffix)
    load_params(data=raw)  # the clean config must load: raises ConfigError (exit 2) otherwise
    if output is not None and output.resolve() == file.resolve():
        raise ConfigError(
            f"config migrate would overwrite {file}", hint="give another file with -o, e.g. -o new.json"
        )
    lines = [f"# {c.change}" for c in changes] or ["# nothing to change"]
    if output is None:
        click.echo(text, nl=False)
        for line in lines:
            click.echo(line, err=True)
    else:
        write_text(output, text)
        for line in lines:
            click.echo(line)
        click.echo(f"# wrote {output}")
