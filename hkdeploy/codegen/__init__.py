"""Code generation: Jinja templates (``templates/``) rendered reproducibly (LF, no timestamps).

``naming`` (C identifiers, include guards) is plain Python that the config validator imports; the
Jinja-based ``render`` module loads on first use, so validating a config does not import Jinja.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hkdeploy.codegen.naming import c_identifier_problem, include_guard

if TYPE_CHECKING:
    from hkdeploy.codegen.render import c_bytes, render_template

__all__ = ["c_bytes", "c_identifier_problem", "include_guard", "render_template"]


def __getattr__(name: str) -> Any:
    if name in ("c_bytes", "render_template"):
        from hkdeploy.codegen import render

        return getattr(render, name)
    raise AttributeError(f"module 'hkdeploy.codegen' has no attribute {name!r}")
