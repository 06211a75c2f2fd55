"""A hand-written stand-in export (TEST DOUBLE): the files a real `hkdeploy export` leaves, for a
1250-byte int8 input and a 4-class int8 output, with placeholder headers. Lets build/validate/doctor
tests start without TensorFlow; never a model anything can run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_fake_export(d: Path, frames: int = 8) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    tensor = {"dtype": "int8", "shape": [1, 1250, 1], "scale": 0.05, "zero_point": 0, "bytes": 1250}
    out = {"dtype": "int8", "shape": [1, 4], "scale": 1 / 256, "zero_point": -128, "bytes": 4}
    report = {
        "schema": "hkdeploy.export_report/1",
        "name": "demo",
        "model": {"sha256": "22" * 32, "size": 1000, "input": tensor, "output": out, "layers": []},
        "arena": {"host_min": 3000, "board": 4096, "recorded": 3000},
        "board_fit": {},
        "verdict": {},
    }
    (d / "export_report.json").write_text(json.dumps(report))
    rng = np.random.default_rng(0)
    np.savez(
        d / "test_data.npz",
        input_raw=rng.integers(-128, 127, (frames, 1, 1250, 1), dtype=np.int8),
        y=np.arange(frames, dtype=np.int64) % 4,
        tflm=rng.integers(-128, 127, (frames, 4), dtype=np.int8),
        keras_float=rng.random((frames, 4)).astype(np.float32),
    )
    for h in ("model_buffer.h", "model_ops.h", "model_config.h"):
        (d / h).write_text(f"/* stand-in {h} */\n" + "x" * 20000 * (h == "model_buffer.h"))
    return d
