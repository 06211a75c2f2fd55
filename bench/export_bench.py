"""Export wall time vs the bare floor, measured side by side in one run.

- hkdeploy: ``hkdeploy export -c configs/demo.json`` (a fresh process: load, data, convert in a
  subprocess, inspect, arena bisection in subprocesses, three-way check, headers, reports).
- floor: a fresh process doing only a plain ``TFLiteConverter`` int8 conversion of the same model
  (batch 1, the same calibration frames) and one TFLM pass over the same test frames.

Usage: ``python bench/export_bench.py [--config configs/demo.json] [--repeat 1]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FLOOR = r"""
import sys, numpy as np, keras, tensorflow as tf
from tflite_micro.python.tflite_micro import runtime
model = keras.models.load_model(sys.argv[1], compile=False)
inp = keras.Input(shape=model.inputs[0].shape[1:], batch_size=1)
fixed = keras.Model(inp, keras.layers.Softmax()(model(inp)))
calib = np.load(sys.argv[2])["x"]
conv = tf.lite.TFLiteConverter.from_keras_model(fixed)
conv.optimizations = [tf.lite.Optimize.DEFAULT]
conv.representative_dataset = lambda: ([f[None]] for f in calib)
conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
conv.inference_input_type = tf.int8
conv.inference_output_type = tf.int8
flat = conv.convert()
it = runtime.Interpreter.from_bytes(flat, arena_size=int(sys.argv[4]))
for frame in np.load(sys.argv[3])["input_raw"]:
    it.set_input(frame[None], 0)
    it.invoke()
"""


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "demo.json")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    import numpy as np

    from hkdeploy.config import load_params
    from hkdeploy.datasets import load_split

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    exe = str(Path(sys.executable).parent / "hkdeploy")
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job"
        params = load_params(args.config, job_dir=job).params
        load_split(params, "test", params.test_size)  # warm the synthetic-data cache for both sides
        calib = load_split(params, "train", params.quantization.calibration_size)
        np.savez(Path(tmp) / "calib.npz", x=calib.x)
        ours, floor = [], []
        for _ in range(args.repeat):
            ours.append(timed([exe, "-q", "export", "-c", str(args.config), "--job-dir", str(job)], env))
            arena = __import__("json").loads((job / "export" / "export_report.json").read_text())["arena"][
                "board"
            ]
            floor.append(
                timed(
                    [
                        sys.executable,
                        "-c",
                        FLOOR,
                        str(params.model_file),
                        str(Path(tmp) / "calib.npz"),
                        str(job / "export" / "test_data.npz"),
                        str(arena),
                    ],
                    env,
                )
            )
    o, f = min(ours), min(floor)
    print(f"frames: test {params.test_size}, calibration {params.quantization.calibration_size}")
    print(f"hkdeploy export wall time : {o:7.2f} s")
    print(f"bare floor (convert + TFLM): {f:7.2f} s")
    print(f"ratio export / floor      : {o / f:7.2f}x")


if __name__ == "__main__":
    main()
