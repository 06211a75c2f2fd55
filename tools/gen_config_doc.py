"""Render the configuration reference (docs/config.md) from the schema.

``python -m tools.gen_config_doc > docs/config.md`` regenerates it; a test fails when it is stale.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from hkdeploy.config.heartkit import HEARTKIT_DATASETS, HEARTKIT_MARKERS, QUIRK_DOCS
from hkdeploy.config.params import TRAINING_ONLY_FIELDS, DeployParams


def _type_name(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "").replace("pathlib.", "").replace("<class '", "")
    text = text.replace("'>", "").replace("hkdeploy.config.params.", "")
    return text


def _default(info: Any) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel):
            return "(section)"
        if info.description and "Parallel" in info.description:
            return "CPU count"
        return json.dumps(value)
    default = info.default
    return json.dumps(default if not hasattr(default, "__fspath__") else str(default))


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    rows = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        sub = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        limits = ", ".join(
            f"{k} {getattr(m, k)}" for m in info.metadata for k in ("gt", "ge", "lt", "le") if hasattr(m, k)
        )
        desc = (info.description or "").replace("|", "\\|")
        if sub is not None and sub.__name__ != "NamedParams":
            rows.append(f"| `{prefix}{name}` | section | | | {desc} |")
            rows += _rows(sub, f"{prefix}{name}.")
        else:
            type_name = _type_name(ann).replace("|", "\\|")
            rows.append(f"| `{prefix}{name}` | `{type_name}` | `{_default(info)}` | {limits} | {desc} |")
    return rows


def render() -> str:
    """The whole Markdown page."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from the schema by `python -m tools.gen_config_doc`; `hkdeploy config schema` prints the",
        "JSON schema. Field names follow HeartKit's `HKTaskParams`. Unknown keys are errors; these",
        "HeartKit training-only keys are accepted and reported once as ignored:",
        "",
        ", ".join(f"`{k}`" for k in sorted(TRAINING_ONLY_FIELDS)) + ".",
        "",
        "## HeartKit configs",
        "",
        "HeartKit's own task configs load unchanged, never silently. A config is taken as HeartKit's when it",
        "holds a key only HeartKit uses (" + ", ".join(f"`{k}`" for k in sorted(HEARTKIT_MARKERS)) + ",",
        "or any `<key>-dis`) or names a HeartKit dataset ("
        + ", ".join(f"`{k}`" for k in sorted(HEARTKIT_DATASETS))
        + ").",
        "In such a config each of these HeartKit quirks is handled as below with one warning line that",
        "names the key to write; `hkdeploy config migrate FILE [-o OUT]` writes the config with them fixed",
        "(one `#` line per change on the command's output, none in the file). Any other unknown key, and",
        "these same keys in a config that is not HeartKit's, stay errors with the closest valid name.",
        "",
        "| HeartKit quirk | what hkdeploy does |",
        "|---|---|",
        *[f"| `{k}` | {v} |" for k, v in QUIRK_DOCS],
        "",
        "Same name, different effect: `test_metric_threshold` (HeartKit compares Keras with desktop TFLite",
        "and only logs a warning; hkdeploy compares Keras with TFLM and fails with exit 1) and",
        "`quantization.enabled` (default False in HeartKit, whose export ignores it and quantizes per",
        "`format`; default True here). HeartKit's `val_file` is read: a saved tf.data dataset that",
        "replaces `datasets` as the source of test *and* calibration frames, as in HeartKit's export.",
        "",
        "## Fields",
        "",
        "| key | type | default | limits | description |",
        "|---|---|---|---|---|",
        *_rows(DeployParams),
        "",
    ]
    return "\n".join(lines)


def main() -> None:  # pragma: no cover - thin wrapper
    print(render(), end="")


if __name__ == "__main__":
    main()
