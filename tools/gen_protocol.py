"""Render both ends of the wire protocol from ``firmware/protocol/spec.yaml``.

``python -m tools.gen_protocol`` writes ``firmware/protocol/hk_protocol.h``,
``hkdeploy/link/protocol.py`` and ``docs/protocol.md``; ``--check`` exits 1 when a committed file differs from the spec.
Output is byte-for-byte reproducible (no timestamps, LF).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hkdeploy.codegen import render_template
from hkdeploy.paths import firmware_dir

REPO = Path(__file__).resolve().parents[1]
SPEC = firmware_dir() / "protocol" / "spec.yaml"
C_OUT = firmware_dir() / "protocol" / "hk_protocol.h"
PY_OUT = REPO / "hkdeploy" / "link" / "protocol.py"
DOC_OUT = REPO / "docs" / "protocol.md"

_SCALARS = {
    "uint8_t": "B",
    "int8_t": "b",
    "uint16_t": "H",
    "int16_t": "h",
    "uint32_t": "I",
    "int32_t": "i",
    "float": "f",
}


@dataclass
class Field:
    name: str
    ctype: str
    count: int | str  # 1, N, or "variable"
    kind: str  # scalar | array | bytes | str | struct
    fmt: str
    doc: str = ""
    struct_class: str = ""

    @property
    def py_type(self) -> str:
        return {
            "scalar": "float" if self.ctype == "float" else "int",
            "array": "tuple[float, ...]" if self.ctype == "float" else "tuple[int, ...]",
            "bytes": "bytes",
            "str": "str",
            "struct": self.struct_class,
        }[self.kind]

    @property
    def c_decl(self) -> str:
        if self.count == "variable":
            return f"{self.ctype} {self.name}[]"
        if self.count != 1:
            return f"{self.ctype} {self.name}[{self.count}]"
        return f"{self.ctype} {self.name}"


@dataclass
class Layout:
    """A fixed part (struct format) and an optional variable-length tail."""

    class_name: str
    c_name: str
    fields: list[Field] = field(default_factory=list)
    tail: Field | None = None
    doc: str = ""

    @property
    def fmt(self) -> str:
        return "<" + "".join(f.fmt for f in self.fields)

    @property
    def size(self) -> int:
        return struct.calcsize(self.fmt)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))


def _field(spec: dict[str, Any], structs: dict[str, Layout]) -> Field:
    ctype, count = spec["ctype"], spec.get("count", 1)
    doc = spec.get("doc", "")
    if ctype in structs:
        return Field(spec["name"], ctype, 1, "struct", structs[ctype].fmt[1:], doc, structs[ctype].class_name)
    if count == "variable":
        return Field(spec["name"], ctype, count, "str" if ctype == "char" else "bytes", "", doc)
    if ctype == "char":
        return Field(spec["name"], ctype, count, "str", f"{count}s", doc)
    if ctype == "uint8_t" and count != 1:
        return Field(spec["name"], ctype, count, "bytes", f"{count}s", doc)
    code = _SCALARS[ctype]
    if count == 1:
        return Field(spec["name"], ctype, 1, "scalar", code, doc)
    return Field(spec["name"], ctype, count, "array", f"{count}{code}", doc)


def _layout(
    class_name: str, c_name: str, fields: list[dict[str, Any]], structs: dict[str, Layout], doc: str
) -> Layout:
    layout = Layout(class_name, c_name, doc=doc)
    for i, spec in enumerate(fields):
        f = _field(spec, structs)
        if f.count == "variable":
            if i != len(fields) - 1:
                raise ValueError(f"{class_name}.{f.name}: a variable-length field must be the last one")
            layout.tail = f
        else:
            layout.fields.append(f)
    return layout


def load_spec(path: Path = SPEC) -> dict[str, Any]:
    """The spec, with layouts computed for every struct and message part."""
    spec = yaml.safe_load(path.read_text())
    structs: dict[str, Layout] = {}
    for s in spec.get("structs", []):
        cls = _camel(s["name"].removeprefix("hk_").removesuffix("_t"))
        structs[s["name"]] = _layout(cls, s["name"], s["fields"], structs, s.get("doc", ""))
    messages = []
    for m in spec["messages"]:
        base = _camel(m["name"])
        lower = m["name"].lower()
        messages.append(
            {
                **m,
                "request_layout": _layout(
                    f"{base}Request", f"hk_{lower}_req_t", m.get("request", []), structs, ""
                ),
                "response_layout": _layout(
                    f"{base}Response", f"hk_{lower}_rsp_t", m.get("response", []), structs, ""
                ),
            }
        )
    for st in spec["status"]:
        st["text_lit"] = json.dumps(st["text"], ensure_ascii=False)
        st["hint_lit"] = json.dumps(st["hint"], ensure_ascii=False)
    header_fmt = "<" + "".join(_SCALARS[f["ctype"]] for f in spec["framing"]["header"])
    return {
        **spec,
        "struct_layouts": list(structs.values()),
        "message_layouts": messages,
        "header_fmt": header_fmt,
        "header_size": struct.calcsize(header_fmt),
    }


def render_all(path: Path = SPEC) -> dict[Path, str]:
    """Both generated files, rendered in memory."""
    spec = load_spec(path)
    return {
        C_OUT: render_template("protocol/hk_protocol.h.j2", spec=spec),
        PY_OUT: render_template("protocol/protocol.py.j2", spec=spec),
        DOC_OUT: render_template("protocol/protocol.md.j2", spec=spec),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the protocol's C header and Python module.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for out, text in render_all().items():
        if args.check:
            if not out.exists() or out.read_text() != text:
                stale.append(str(out))
        else:
            out.write_text(text)
    if stale:
        print(
            "stale generated files (run python -m tools.gen_protocol): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
