"""Render Jinja templates reproducibly: LF endings, trailing newline kept, undefined names are errors."""

from __future__ import annotations

import functools
from typing import Any

import jinja2

from hkdeploy.paths import templates_dir


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment over ``templates/``."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        newline_sequence="\n",
        autoescape=False,
    )


def render_template(name: str, **context: Any) -> str:
    """Render ``templates/<name>`` with ``context``."""
    text = environment().get_template(name).render(**context)
    return text.replace("\r\n", "\n")


def c_bytes(data: bytes, per_line: int = 12, indent: str = "    ") -> str:
    """``0x1c, 0x00, ...`` rows for a C array initializer."""
    rows = []
    for i in range(0, len(data), per_line):
        rows.append(indent + ", ".join(f"0x{b:02x}" for b in data[i : i + per_line]) + ",")
    return "\n".join(rows)
