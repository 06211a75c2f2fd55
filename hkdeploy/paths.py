"""Where the package's data lives: templates, firmware sources, bundled configs and example.

In a source checkout (editable install) they are the repository's top-level folders; in a wheel
they are shipped under ``hkdeploy/_data`` (see ``[tool.hatch.build.targets.wheel.force-include]``).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path:
    shipped = _PKG / "_data" / name
    if shipped.is_dir():
        return shipped
    return _PKG.parent / name


def templates_dir() -> Path:
    """Folder of the Jinja templates (``templates/``)."""
    return _data_dir("templates")


def firmware_dir() -> Path:
    """Folder of the firmware sources (``firmware/``)."""
    return _data_dir("firmware")


def configs_dir() -> Path:
    """Folder of the bundled configurations (``configs/``)."""
    return _data_dir("configs")


def examples_dir() -> Path:
    """Folder of the bundled example model and its training script (``examples/``)."""
    return _data_dir("examples")
