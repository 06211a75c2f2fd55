"""The ``--place`` / ``--places`` options shared by validate, demo and run (labgrid lab farm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def lab_options(multiple: bool = True) -> Callable[[F], F]:
    """Adds ``--place NAME`` (repeatable when ``multiple``) and ``--places TAG=VALUE``."""

    def deco(fn: F) -> F:
        fn = click.option(
            "--places",
            "place_tags",
            multiple=True,
            metavar="TAG=VALUE",
            help="Acquire every free labgrid place with these tags (repeatable, or TAG=V,TAG2=V2)"
            if multiple
            else "Acquire the first free labgrid place with these tags",
        )(fn)
        fn = click.option(
            "--place",
            "places",
            multiple=multiple,
            help="Acquire this labgrid place and use its board (repeat to shard over several)"
            if multiple
            else "Acquire this labgrid place and use its board",
        )(fn)
        return fn

    return deco
