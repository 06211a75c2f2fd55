"""Terminal output: one rich console on stderr, logging set-up, and a progress helper.

Results a user may pipe (JSON, tables they asked for) go to stdout; progress, warnings and errors
go to stderr. NO_COLOR and non-TTY outputs are honoured by rich.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, highlight=False)
stdout = Console(highlight=False, soft_wrap=True)

_state = {"verbosity": 1}


def set_verbosity(verbosity: int) -> None:
    """0 = quiet (errors only), 1 = normal, 2 = debug (-v), 3 = debug + tracebacks (-vv)."""
    _state["verbosity"] = verbosity
    level = {0: logging.ERROR, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    root = logging.getLogger("hkdeploy")
    root.handlers.clear()
    handler = RichHandler(console=console, show_time=False, show_path=verbosity >= 3, markup=False)
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def verbosity() -> int:
    """Current verbosity (see ``set_verbosity``)."""
    return _state["verbosity"]


def warn(message: str) -> None:
    """A one-line warning on stderr (shown unless quiet)."""
    if verbosity() > 0:
        console.print(f"[yellow]warning:[/yellow] {message}", markup=True)


def info(message: str) -> None:
    """A one-line message on stderr (shown unless quiet)."""
    if verbosity() > 0:
        console.print(message, markup=False)


@contextmanager
def progress(transient: bool = True, enabled: bool = True) -> Iterator[Progress]:
    """A rich progress display (disabled when quiet or not ``enabled``)."""
    prog = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
        console=console,
        transient=transient,
        disable=verbosity() == 0 or not enabled,
    )
    with prog:
        yield prog
