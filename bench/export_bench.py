"""Export vs the bare floor, wall and CPU time, side by side for the demo model and HeartKit's rhythm TCN.

- export: ``hkdeploy -q export -c <config>`` in a fresh process (data, the TensorFlow worker: load,
  convert, Keras float and host int8 legs; TFLM leg, arena probes, headers, reports).
- floor: a fresh process doing only what any export must: load the model, a batch-1 int8
  conversion on the same calibration frames, one TFLM pass over the same test frames.

Times are whole processes: wall from start to exit, CPU = user + system of the process and every
child it waited for (``os.wait4``). Runs alternate export, floor, export, floor ... after a warm-up
of each, so a drift of the machine's speed hits both; the median of ``--runs`` is printed, with
export / floor ratios and the export's own per-step timings (median of its export_report.json
``timings_s``).

The TCN: neuralspot-edge's ``TcnModel`` with the block parameters of HeartKit's rhythm TCN (its
documented model configuration: 5 blocks of 12/20/28/36/40 filters, (1, 3) kernels, dilations
1/1/2/4/8, squeeze-excite), a global-average-pooling classification head, on 512-sample frames of
the synthetic dataset, trained for ``--tcn-epochs`` epochs (a few seconds) by this script.

Usage: ``python bench/export_bench.py [--models demo,tcn] [--runs 3] [--warmup 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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

# HeartKit's rhythm TCN (docs/models/index.md of AmbiqAI/heartkit, the `--task rhythm` example).
TCN_BLOCKS = [
    {"filters": 12, "se_ratio": 0, "dilation": [1, 1]},
    {"filters": 20, "se_ratio": 2, "dilation": [1, 1]},
    {"filters": 28, "se_ratio": 2, "dilation": [1, 2]},
    {"filters": 36, "se_ratio": 2, "dilation": [1, 4]},
    {"filters": 40, "se_ratio": 2, "dilation": [1, 8]},
]

TCN_CONFIG: dict[str, Any] = {
    "name": "tcn_bench",
    "datasets": [
        {"name": "synthetic", "params": {"num_patients": 60, "frames_per_patient": 20, "segment_frames": 5}}
    ],
    "sampling_rate": 100,
    "frame_size": 512,
    "preprocesses": [{"name": "layer_norm", "params": {"epsilon": 0.01}}],
    "test_size": 200,
    "test_patients": 0.2,
    "num_classes": 4,
    "class_map": {"0": 0, "1": 1, "2": 2, "3": 3},
    "class_names": ["NSR", "SBRAD", "STACH", "AFIB"],
    "use_logits": False,
    "quantization": {"enabled": True, "format": "int8", "io_type": "int8", "calibration_size": 128},
    "test_metric": "acc",
    "test_metric_threshold": None,
    "seed": 42,
    "board": {"name": "apollo4p_evb"},
}


def build_tcn(config: Path, out: Path, epochs: int) -> None:
    """Build and briefly train the rhythm TCN (in a child process: this one stays TensorFlow-free)."""
    code = r"""
import sys, json, keras, numpy as np
from neuralspot_edge.models import TcnModel
from hkdeploy.config import load_params
from hkdeploy.datasets import load_split
params = load_params(sys.argv[1]).params
keras.utils.set_random_seed(params.seed)
blocks = [dict(depth=1, branch=1, kernel=[1, 3], dropout=0.10, ex_ratio=1, norm="batch", **b)
          for b in json.loads(sys.argv[3])]
inputs = keras.Input(shape=(params.frame_size, 1), name="ecg")
y = TcnModel.layer_from_params(inputs, dict(input_kernel=[1, 3], input_norm="batch", blocks=blocks,
                               output_kernel=[1, 3], include_top=False, use_logits=True), None)
y = keras.layers.Reshape((params.frame_size, -1))(y) if len(y.shape) == 4 else y
y = keras.layers.GlobalAveragePooling1D()(y)
model = keras.Model(inputs, keras.layers.Dense(params.num_classes, name="logits")(y), name="rhythm_tcn")
train = load_split(params, "train")
model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(train.x, train.y, batch_size=32, epochs=int(sys.argv[4]), verbose=0)
model.save(sys.argv[2])
print(model.count_params())
"""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(config), str(out), json.dumps(TCN_BLOCKS), str(epochs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        sys.exit(f"building the TCN failed:\n{proc.stderr[-3000:]}")
    print(f"TCN: {proc.stdout.strip().splitlines()[-1]} parameters, trained {epochs} epochs -> {out}")


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, cpu) of a whole process and its waited-for children."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read()  # until it exits (bounded by the command's own bounds)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode not in (0, 1):  # 1: a threshold failure still writes every artifact
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def bench_model(
    name: str, config: Path, job: Path, tmp: Path, runs: int, warmup: int, env: dict[str, str]
) -> dict[str, Any]:
    import numpy as np

    from hkdeploy.config import load_params
    from hkdeploy.datasets import load_split

    params = load_params(config, job_dir=job).params
    load_split(params, "test", params.test_size)  # warm the synthetic-data cache for both sides
    calib = load_split(params, "train", params.quantization.calibration_size)
    calib_path = tmp / f"{name}_calib.npz"
    np.savez(calib_path, x=calib.x)
    exe = str(Path(sys.executable).parent / "hkdeploy")
    export_cmd = [exe, "-q", "export", "-c", str(config), "--job-dir", str(job)]
    report_path = job / "export" / "export_report.json"
    for _ in range(warmup):
        timed(export_cmd, env)
    report = json.loads(report_path.read_text())
    floor_cmd = [
        sys.executable,
        "-c",
        FLOOR,
        str(params.model_file),
        str(calib_path),
        str(tmp / f"{name}_test_data.npz"),
        str(report["arena"]["board"]),
    ]
    (tmp / f"{name}_test_data.npz").write_bytes((job / "export" / "test_data.npz").read_bytes())
    for _ in range(warmup):
        timed(floor_cmd, env)
    ours, floor, steps = [], [], []
    for _ in range(runs):
        ours.append(timed(export_cmd, env))
        steps.append(json.loads(report_path.read_text())["timings_s"])
        floor.append(timed(floor_cmd, env))
    return {
        "name": name,
        "model_bytes": report["model"]["size"],
        "frames": report["test"]["frames"],
        "export": [statistics.median(v) for v in zip(*ours, strict=True)],
        "floor": [statistics.median(v) for v in zip(*floor, strict=True)],
        "ratio_runs": [(o[0] / f[0], o[1] / f[1]) for o, f in zip(ours, floor, strict=True)],
        "steps": {k: statistics.median(s[k] for s in steps) for k in steps[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", default="demo,tcn", help="comma-separated: demo, tcn")
    parser.add_argument("--runs", type=int, default=3, help="measured runs of each command (median)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured runs of each command first")
    parser.add_argument("--tcn-epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in args.models.split(","):
            if name == "demo":
                config = REPO / "configs" / "demo.json"
            elif name == "tcn":
                config = tmp / "tcn.json"
                model = tmp / "rhythm_tcn.keras"
                config.write_text(json.dumps({**TCN_CONFIG, "model_file": str(model), "job_dir": str(tmp)}))
                build_tcn(config, model, args.tcn_epochs)
            else:
                sys.exit(f"unknown model {name!r}: demo or tcn")
            results.append(bench_model(name, config, tmp / f"job_{name}", tmp, args.runs, args.warmup, env))

    print(f"\nwhole processes, median of {args.runs} after {args.warmup} warm-up, alternating")
    print(
        f"{'model':6} {'int8 B':>7} {'export wall':>11} {'floor wall':>10} {'ratio':>6}   "
        f"{'export cpu':>10} {'floor cpu':>9} {'ratio':>6}"
    )
    for r in results:
        (ew, ec), (fw, fc) = r["export"], r["floor"]
        print(
            f"{r['name']:6} {r['model_bytes']:7d} {ew:10.2f}s {fw:9.2f}s {ew / fw:5.2f}x   "
            f"{ec:9.2f}s {fc:8.2f}s {ec / fc:5.2f}x"
        )
    for r in results:
        pairs = ", ".join(f"{w:.2f}/{c:.2f}" for w, c in r["ratio_runs"])
        wall_med = statistics.median(w for w, _ in r["ratio_runs"])
        cpu_med = statistics.median(c for _, c in r["ratio_runs"])
        print(f"{r['name']}: paired ratios wall/cpu {pairs}; their medians {wall_med:.2f}x / {cpu_med:.2f}x")
        print(f"{r['name']}: export steps (s) " + ", ".join(f"{k} {v:.2f}" for k, v in r["steps"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
