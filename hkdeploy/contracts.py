"""The typed hand-offs between stages: what export leaves for build/validate/demo, what build leaves
for flash/validate.

Each artifact has one pydantic model and one loader. A missing artifact raises the one "run
`hkdeploy export` first" (or `build`) error; a damaged one (not JSON, wrong shape, truncated npz)
says which file and how to make it again. The models name only the fields later stages read and
keep everything else (``extra="allow"``), so the files stay documented in docs/export.md and
docs/workflow.md. No TensorFlow here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hkdeploy.errors import UserError

EXPORT_REPORT = "export_report.json"
TEST_DATA = "test_data.npz"
BUILD_MANIFEST = "build_manifest.json"
MODEL_HEADERS = ("model_buffer.h", "model_ops.h", "model_config.h")
EXPORT_HINT = "run `hkdeploy export` first (or `hkdeploy run`)"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class TensorSpec(_Open):
    """An input or output tensor of the exported model."""

    dtype: str
    shape: list[int]
    scale: float = 0.0
    zero_point: int = 0
    bytes: int = 0


class ModelSection(_Open):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)
    input: TensorSpec
    output: TensorSpec


class ArenaSection(_Open):
    host_min: int
    board: int = Field(ge=1)
    recorded: int | None = None
    target32: dict[str, Any] | None = None

    @property
    def host(self) -> int:
        """Arena for the host runtime (64-bit pointers): never below the host minimum."""
        return max(self.board, self.host_min)


class ExportManifest(_Open):
    """``export_report.json`` (the fields later stages read; see docs/export.md for all)."""

    schema_: str = Field(alias="schema", pattern=r"^hkdeploy\.export_report/")
    name: str
    model: ModelSection
    arena: ArenaSection
    board_fit: dict[str, Any] = Field(default_factory=dict)
    verdict: dict[str, Any] = Field(default_factory=dict)

    @property
    def sha256(self) -> bytes:
        return bytes.fromhex(self.model.sha256)


class TestData(BaseModel):
    """``test_data.npz``: the seeded test frames and every leg's outputs on them."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    input_raw: np.ndarray  # the quantized frames as sent to the device
    y: np.ndarray
    tflm: np.ndarray  # the TFLM golden outputs (raw, in the output dtype)
    keras_float: np.ndarray
    arrays: dict[str, np.ndarray]  # everything in the file

    def __len__(self) -> int:
        return len(self.y)


class BuildManifest(_Open):
    """``build_manifest.json`` of one board's build (see docs/workflow.md)."""

    schema_: str = Field(alias="schema", pattern=r"^hkdeploy\.build_manifest/")
    board: str
    model_sha256: str
    sources_sha256: str
    build_id: str
    binary: str | None = None
    binary_sha256: str | None = None
    platform: str | None = None
    sizes: dict[str, int] = Field(default_factory=dict)


def _damaged(path: Path, why: str, hint: str) -> UserError:
    return UserError(f"{path} is damaged ({why})", hint=hint)


def read_json_file(path: Path, hint: str) -> dict[str, Any]:
    """A JSON object from ``path``; a damaged file is a UserError naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(path, f"not JSON: {exc}", hint) from None
    if not isinstance(data, dict):
        raise _damaged(path, f"a JSON {type(data).__name__}, not an object", hint)
    return data


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


def load_export(export_dir: Path, *, headers: bool = False) -> ExportManifest:
    """The export in ``export_dir`` (with ``headers``: the C headers must be there too).

    Raises:
        UserError: no export there, or its report is damaged.
    """
    path = export_dir / EXPORT_REPORT
    missing = [h for h in MODEL_HEADERS if headers and not (export_dir / h).is_file()]
    if not path.is_file() or missing:
        raise UserError(f"no export in {export_dir}", hint=EXPORT_HINT)
    data = read_json_file(path, hint=f"export again: {EXPORT_HINT}")
    try:
        return ExportManifest.model_validate(data)
    except ValidationError as exc:
        raise _damaged(path, _first_problem(exc), f"export again: {EXPORT_HINT}") from None


def load_test_data(export_dir: Path) -> TestData:
    """The export's ``test_data.npz`` (no pickle).

    Raises:
        UserError: missing or damaged.
    """
    path = export_dir / TEST_DATA
    if not path.is_file():
        raise UserError(f"no export in {export_dir} ({TEST_DATA} is missing)", hint=EXPORT_HINT)
    try:
        with np.load(path, allow_pickle=False) as d:
            arrays = {k: d[k] for k in d.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _damaged(path, f"{type(exc).__name__}: {exc}", f"export again: {EXPORT_HINT}") from None
    need = ("input_raw", "y", "tflm", "keras_float")
    absent = [k for k in need if k not in arrays]
    if absent:
        raise _damaged(path, f"no array {', '.join(absent)}", f"export again: {EXPORT_HINT}")
    n = len(arrays["y"])
    if n == 0 or any(len(arrays[k]) != n for k in need):
        sizes = ", ".join(f"{k} {len(arrays[k])}" for k in need)
        raise _damaged(path, f"arrays of different or zero length: {sizes}", f"export again: {EXPORT_HINT}")
    return TestData(
        input_raw=arrays["input_raw"],
        y=arrays["y"],
        tflm=arrays["tflm"],
        keras_float=arrays["keras_float"],
        arrays=arrays,
    )


def load_build(out_dir: Path) -> BuildManifest | None:
    """The build manifest in ``out_dir`` (None when there is no build there).

    Raises:
        UserError: the manifest is damaged.
    """
    path = out_dir / BUILD_MANIFEST
    if not path.is_file():
        return None
    hint = "build again: `hkdeploy build` (or `hkdeploy run`)"
    data = read_json_file(path, hint=hint)
    try:
        return BuildManifest.model_validate(data)
    except ValidationError as exc:
        raise _damaged(path, _first_problem(exc), hint) from None
