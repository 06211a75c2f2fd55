"""HeartKit config dialect: recognise a HeartKit task config and handle its known quirks.

The rule (docs/config.md, "HeartKit configs"):

- A config is **HeartKit's** when it holds a key only HeartKit uses (one of its training-only fields
  such as ``architecture``, ``epochs``, ``samples_per_patient``, or a ``<field>-dis`` disabled copy)
  or names one of HeartKit's datasets (``icentia11k``, ``ludb``, ``ptbxl``, ...). hkdeploy has
  neither, so an hkdeploy config is never mistaken for one.
- In a HeartKit config, each quirk in ``QUIRKS`` below is handled the way HeartKit itself behaves
  (or, where HeartKit silently drops an obvious intent, the intent is followed and said so) and gets
  exactly one warning line naming what hkdeploy does and the key to write instead.
- Everything else stays strict: any other unknown key, in a HeartKit config or not, is an error
  with the closest valid name. In a non-HeartKit config the quirk keys are errors too
  (``quantization.mode`` -> "did you mean 'quantization.format'?").

``hkdeploy config migrate FILE`` applies the same fixes and writes the clean config.
No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# HeartKit 1.8's dataset names (heartkit/datasets); none is an hkdeploy dataset.
HEARTKIT_DATASETS: frozenset[str] = frozenset(
    {
        "icentia11k",
        "icentia_mini",
        "ludb",
        "qtdb",
        "ptbxl",
        "lsad",
        "ecg-synthetic",
        "ppg-synthetic",
        "nstdb",
        "bidmc",
        "mitdb",
    }
)

# Top-level keys that mark a config as HeartKit's (fields only HeartKit's training reads).
HEARTKIT_MARKERS: frozenset[str] = frozenset(
    {
        "architecture",
        "epochs",
        "batch_size",
        "buffer_size",
        "steps_per_epoch",
        "val_steps_per_epoch",
        "lr_rate",
        "lr_cycles",
        "lr_decay",
        "samples_per_patient",
        "val_samples_per_patient",
        "test_samples_per_patient",
        "dataset_weights",
        "force_download",
        "class_weights",
        "label_smoothing",
        "weights_file",
        "resume",
        "temperature",
    }
)

DISABLED_SUFFIX = "-dis"


@dataclass(frozen=True)
class Quirk:
    """One HeartKit quirk found in a config and what hkdeploy did with it.

    Attributes:
        path: where it is, e.g. ``quantization.mode`` or ``datasets[1].path``.
        warning: the one warning line (what hkdeploy does; the key to write).
        change: the migration comment (what ``config migrate`` changed).
    """

    path: str
    warning: str
    change: str


def is_heartkit_config(data: Any) -> bool:
    """True when ``data`` (a raw config mapping) is a HeartKit task config (see the module rule)."""
    if not isinstance(data, dict):
        return False
    for key in data:
        if key in HEARTKIT_MARKERS or (isinstance(key, str) and key.endswith(DISABLED_SUFFIX)):
            return True
    datasets = data.get("datasets")
    if isinstance(datasets, list):
        for ds in datasets:
            if isinstance(ds, dict) and str(ds.get("name", "")).lower() in HEARTKIT_DATASETS:
                return True
    return False


def _norm_format(value: Any) -> str:
    from hkdeploy.config.params import _FORMAT_ALIASES

    text = str(value).strip().lower()
    return _FORMAT_ALIASES.get(text, text)


def _quantization_mode(data: dict[str, Any]) -> list[Quirk]:
    q = data.get("quantization")
    if not isinstance(q, dict) or "mode" not in q:
        return []
    mode = q.pop("mode")
    written = "format" in q
    if not written:
        q["format"] = "INT8"  # HeartKit's default, now stated (migrate writes it)
    fmt = _norm_format(q["format"])
    shown = q["format"] if written else "not set: INT8, HeartKit's default"
    if _norm_format(mode) != fmt:
        what = (
            f"quantization.mode ({mode}) is not read by HeartKit's converter, which exports "
            f"quantization.format ({shown}); hkdeploy does the same: write quantization.format: {mode} "
            "if that is what you meant"
        )
        change = (
            f"removed quantization.mode ({mode}); "
            + ("kept" if written else "wrote")
            + f" quantization.format: {q['format']} (what both tools export); set it to {mode} if that was meant"
        )
    else:
        what = (
            f"quantization.mode ({mode}) is not read by HeartKit's converter; hkdeploy follows "
            f"quantization.format ({shown}), the key to write"
        )
        change = f"removed quantization.mode ({mode}): same as quantization.format {shown}"
    return [Quirk("quantization.mode", what, change)]


def _disabled_keys(data: dict[str, Any]) -> list[Quirk]:
    out = []
    for key in [k for k in data if isinstance(k, str) and k.endswith(DISABLED_SUFFIX)]:
        base = key[: -len(DISABLED_SUFFIX)]
        data.pop(key)
        out.append(
            Quirk(
                key,
                f"{key} is HeartKit's disabled copy of '{base}' (never read); hkdeploy ignores it: "
                f"delete it, or rename it to '{base}' to use it",
                f"removed {key} (a disabled copy of '{base}', read by neither tool)",
            )
        )
    return out


def _dataset_path(data: dict[str, Any]) -> list[Quirk]:
    out: list[Quirk] = []
    datasets = data.get("datasets")
    if not isinstance(datasets, list):
        return out
    for i, ds in enumerate(datasets):
        if not isinstance(ds, dict) or "path" not in ds:
            continue
        where = f"datasets[{i}]"
        value = ds.pop("path")
        params = ds.get("params")
        if not params:
            moved = value if isinstance(value, dict) else {"path": value}
            ds["params"] = moved
            out.append(
                Quirk(
                    f"{where}.path",
                    f"{where}.path is a typo for {where}.params (HeartKit ignores it); hkdeploy reads it as "
                    f"{where}.params: write {where}.params",
                    f"moved {where}.path into {where}.params",
                )
            )
        else:
            out.append(
                Quirk(
                    f"{where}.path",
                    f"{where}.path is not read by HeartKit and {where}.params is already set; hkdeploy "
                    f"ignores it: delete it or move it into {where}.params",
                    f"removed {where}.path ({where}.params was already set)",
                )
            )
    return out


QUIRKS: tuple[Callable[[dict[str, Any]], list[Quirk]], ...] = (
    _quantization_mode,
    _disabled_keys,
    _dataset_path,
)

# The quirks in words, for the docs (one entry per handler above).
QUIRK_DOCS: tuple[tuple[str, str], ...] = (
    (
        "quantization.mode",
        "not read by HeartKit's converter (it exports `format`); hkdeploy follows `quantization.format` "
        'too, so `"mode": "FP32"` with `"format": "INT8"` exports int8 in both tools. Write '
        "`quantization.format`.",
    ),
    (
        "<key>-dis",
        "HeartKit's way to disable a key (e.g. `augmentations-dis`); read by neither tool, ignored. "
        "Delete it.",
    ),
    (
        "datasets[].path",
        "a typo for `params` (HeartKit ignores it, so the dataset gets no parameters); hkdeploy uses "
        "it as `params` when `params` is empty, else ignores it. Write `datasets[].params`.",
    ),
)


def apply_quirks(data: dict[str, Any]) -> list[Quirk]:
    """Fix every known HeartKit quirk in ``data`` in place; return what was found, in file order."""
    found: list[Quirk] = []
    for handler in QUIRKS:
        found += handler(data)
    return found
