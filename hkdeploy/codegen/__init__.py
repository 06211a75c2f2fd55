"""Code generation: Jinja templates (``templates/``) rendered reproducibly (LF, no timestamps)."""

from hkdeploy.codegen.render import c_bytes, include_guard, render_template

__all__ = ["c_bytes", "include_guard", "render_template"]
