"""``hkdeploy mlperf dataset``: the runner's dataset folder from the export's test set.

The runner (``benchmark/runner/datasets.py``) reads ``<dataset_path>/<model_id>/<truth_file>``, a CSV
without a header whose columns are ``file, classes, class[, bytes_to_send, stride]``, and sends each
listed file's bytes to the DUT as they are. So each input is written as the raw bytes of the model's
input tensor (int8 as exported, ``input_raw`` of ``test_data.npz``); ad01 rows carry
``bytes_to_send`` and ``stride`` equal to the input size (one window per file). Deterministic: the
test set's order, no timestamps, LF line ends. No TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hkdeploy.config.params import DeployParams
from hkdeploy.errors import UserError
from hkdeploy.fsutil import write_bytes, write_text

TRUTH_FILE = "y_labels.csv"


@dataclass(frozen=True)
class DatasetResult:
    folder: Path  # <out>/<model_id>
    files: int
    input_bytes: int


def load_export(params: DeployParams) -> tuple[dict, dict[str, np.ndarray]]:
    """(export_report.json, test_data.npz arrays) of the current export."""
    report, data = params.export_dir / "export_report.json", params.export_dir / "test_data.npz"
    if not report.is_file() or not data.is_file():
        raise UserError(
            f"no export in {params.export_dir}", hint="run `hkdeploy export` first (or `hkdeploy run`)"
        )
    with np.load(data) as d:
        arrays = {k: d[k] for k in d.files}
    return json.loads(report.read_text()), arrays


def write_dataset(params: DeployParams, out: Path, count: int | None = None) -> DatasetResult:
    """Write ``out/<model_id>/`` (``.bin`` per input and ``y_labels.csv``); returns what was written."""
    report, data = load_export(params)
    model_id = params.mlperf.model_id
    raw, y = data["input_raw"], data["y"]
    n = min(len(raw), count or params.mlperf.dataset_size or len(raw))
    classes = int(params.num_classes)
    if model_id == "ad01":
        classes = 2  # the runner's anomaly score: labels 0 normal, 1 anomalous
    folder = out / model_id
    input_bytes = int(report["model"]["input"]["bytes"])
    rows = []
    width = max(5, len(str(n - 1)))
    for i in range(n):
        blob = np.ascontiguousarray(raw[i]).tobytes()
        if len(blob) != input_bytes:
            raise UserError(
                f"test input {i} has {len(blob)} bytes, the model input {input_bytes}",
                hint="re-run `hkdeploy export`: the export's test_data.npz does not match its model",
            )
        name = f"{model_id}_{i:0{width}d}.bin"
        write_bytes(folder / name, blob)
        row = f"{name},{classes},{int(y[i])}"
        if model_id == "ad01":
            row += f",{input_bytes},{input_bytes}"
        rows.append(row)
    write_text(folder / TRUTH_FILE, "\n".join(rows) + "\n")
    return DatasetResult(folder, n, input_bytes)
