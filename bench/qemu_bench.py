"""Instructions per inference of the board engine on emulated Cortex-M4 / Cortex-M55, and the arena
each model needs on the 32-bit target, for the demo model and HeartKit's rhythm TCN in one run.

Models (``--models demo,tcn``; bench/bench_models.py): ``demo`` (configs/demo.json) and ``tcn``
(HeartKit's rhythm TCN, 7,422 parameters, 512-sample frames). Each is exported into
``<job-root>/<name>/export`` (default ``job/demo``, ``job/tcn``) unless an export is already there;
``name=DIR`` uses the export in DIR instead. Per model and (core, kernels): builds upstream TFLM from
source with the model's kernels (hkdeploy.platforms.tflm_lib, cached), links
firmware/engine/hk_engine_tflm.cc with the test-double platform of tests/platform/engine_harness,
runs it in qemu-system-arm under ``-icount shift=0`` over the first ``--frames`` test frames, and
prints a table: instructions per inference (min / median / max; SysTick ticks x 1e9 / SysTick
rate), frames equal to the host TFLM golden, TFLM's arena_used on the 32-bit build, the harness
ELF's text / data+bss; then reference / optimized per core, and the arena chosen by the export (its
board arena) / the 32-bit minimum, the minimum verified on the real firmware by
hkdeploy.platforms.arena32 (it allocates, 16 B less does not; ``--no-verify-arena``: arena_used
rounded up to 16, unverified), and what ``firmware.arena_target`` would choose.

How to read the counts: QEMU's ``-icount`` counts guest instructions, one per instruction whatever
it does. A Helium (MVE) instruction such as ``vmladava.s8`` (16 int8 multiply-accumulates) counts 1,
not its beats, as does every ``letp`` of a low-overhead loop (measured: docs/tflm.md). A real
Cortex-M55 runs MVE two beats per cycle (a 128-bit instruction in about 2 cycles, overlapped with the
next) and the loop end is free after the first pass, so the count is neither cycles nor time; it
compares code paths (bench/qemu_profile.py: which functions). Issue 11's M55 + Helium
figure for the demo (0.95 M) is reproduced (0.952 M) only since tflm_lib stopped defining
``ARM_MATH_AUTOVECTORIZE``: with ``-DARM_MATH_AUTOVECTORIZE=0`` CMSIS-NN (``#if defined``) compiled
its plain-C inner loops instead of its MVE assembly, and the M55 ran 3.34 M (docs/tflm.md).

Needs HK_TFLM_ROOT / HK_TFLM_DOWNLOADS (docs/tflm.md), arm-none-eabi-gcc + newlib, qemu-system-arm;
the TCN also neuralspot-edge (in the project's venv). Usage:
``python bench/qemu_bench.py [--models demo,tcn] [--frames 5] [--combos cortex-m4:cmsis_nn,...]
[--json out.json]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from bench_models import DEMO_CONFIG, ensure_export, write_tcn_config

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hkdeploy.platforms import tflm_lib  # noqa: E402

ALL = ["cortex-m4:reference", "cortex-m4:cmsis_nn", "cortex-m55:reference", "cortex-m55:cmsis_nn"]
OPT_NAME = {"cortex-m4": "CMSIS-NN (DSP)", "cortex-m55": "CMSIS-NN (Helium)"}
HARNESS_ARENA = 1 << 17  # generous: the harness measures arena_used, it does not size the arena


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_qemu", REPO / "tests/platform/test_engine_qemu.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def _sizes(elf: Path) -> tuple[int, int]:
    """(text, data + bss) of an ELF (``arm-none-eabi-size``, Berkeley format)."""
    res = subprocess.run(
        ["arm-none-eabi-size", str(elf)], capture_output=True, text=True, timeout=60, check=True
    )
    text, data, bss = (int(v) for v in res.stdout.splitlines()[1].split()[:3])
    return text, data + bss


def _model_spec(spec: str, job_root: Path, tcn_epochs: int) -> tuple[str, Path, Path]:
    """``name`` or ``name=EXPORT_DIR`` -> (name, config, export dir)."""
    name, eq, where = spec.partition("=")
    if not eq:
        config, export_dir = ensure_export(name, job_root / name, tcn_epochs)
        return name, config, export_dir
    export_dir = Path(where).resolve()
    if name == "tcn":
        config = write_tcn_config(job_root / "tcn")
    elif name == "demo":
        config = DEMO_CONFIG
    else:
        sys.exit(f"unknown model {name!r} in {spec!r}: demo=DIR or tcn=DIR")
    return name, config, export_dir


def bench_model(
    h: ModuleType,
    trees: tflm_lib.TflmTrees,
    name: str,
    config: Path,
    export_dir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Every (core, kernels) of ``args.combos`` for one export; prints its table."""
    data = np.load(export_dir / "test_data.npz")
    golden = data["tflm"].reshape(len(data["tflm"]), -1)[: args.frames]
    board_arena = h.config_define(export_dir, "HK_MODEL_ARENA_SIZE")
    report = json.loads((export_dir / "export_report.json").read_text())
    ops = None if args.all_kernels else tflm_lib.export_ops(export_dir)
    macs = sum(int(layer.get("macs", 0)) for layer in report["model"]["layers"])
    print(
        f"\n== {name}: {export_dir} | {report['model']['size']} B int8 model, "
        f"{len(report['model']['layers'])} ops, {macs / 1e6:.3f} M MACs, board arena {board_arena} B, "
        f"{len(golden)} frames",
        flush=True,
    )
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix=f"qemu_bench-{name}-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.bin"
        data["input_raw"][: args.frames].astype(np.int8).tofile(inputs)
        for combo in args.combos.split(","):
            core, kernels = combo.split(":")
            lib = tflm_lib.build_library(trees, core, kernels, ops=ops)  # cached after the first run
            out = work / f"{core}-{kernels}.bin"
            arena = max(HARNESS_ARENA, 2 * board_arena)
            elf = h.build_harness(lib, export_dir, work / f"{core}-{kernels}", arena, inputs, out)
            text, ram = _sizes(elf)
            run = h.run_harness(core, elf, out, golden.shape[1], timeout=3600)
            if run.returncode != 0 or run.outputs is None:
                print(f"{combo}: failed (exit {run.returncode})\n{run.stdout[-800:]}", flush=True)
                continue
            ins = [h.instructions(core, t) for t in run.ticks]
            diff = np.abs(run.outputs.astype(int) - golden.astype(int))
            rows[combo] = {
                "core": core,
                "kernels": kernels,
                "min": min(ins),
                "median": statistics.median(ins),
                "max": max(ins),
                "exact": int((diff == 0).all(axis=1).sum()),
                "frames": len(golden),
                "max_lsb": int(diff.max()),
                "arena_used": run.init[2],
                "arena": (run.init[2] + 15) // 16 * 16,  # TFLM uses the arena in 16-byte units
                "text": text,
                "ram": ram - arena,  # data + bss without the harness's arena
                "lib_key": lib.key,
            }
    print(
        f"{'core':11} {'kernels':10} {'min':>9} {'median':>9} {'max':>9}  {'== golden':>11} "
        f"{'arena_used':>10} {'text':>8} {'RAM-arena':>9}"
    )
    for r in rows.values():
        same = f"{r['exact']}/{r['frames']}" + ("" if r["exact"] == r["frames"] else f" ({r['max_lsb']} LSB)")
        print(
            f"{r['core']:11} {r['kernels']:10} {r['min'] / 1e6:8.3f}M {r['median'] / 1e6:8.3f}M "
            f"{r['max'] / 1e6:8.3f}M  {same:>11} {r['arena_used']:>9}B {r['text']:>7}B {r['ram']:>8}B"
        )
    ratios: dict[str, float] = {}
    for core in ("cortex-m4", "cortex-m55"):
        ref, fast = rows.get(f"{core}:reference"), rows.get(f"{core}:cmsis_nn")
        if ref and fast:
            ratios[core] = ref["median"] / fast["median"]
            print(f"{core}: reference / {OPT_NAME[core]} = {ratios[core]:.1f}x fewer instructions")
    m4, m55 = rows.get("cortex-m4:cmsis_nn"), rows.get("cortex-m55:cmsis_nn")
    if m4 and m55:
        print(f"CMSIS-NN: cortex-m4 / cortex-m55 = {m4['median'] / m55['median']:.2f}x fewer on the M55")
    from hkdeploy.export.target32 import board_arena_from_target32

    sized_from = (
        "32-bit target" if "HK_MODEL_ARENA_MIN32" in (export_dir / "model_config.h").read_text() else "host"
    )
    for combo, r in rows.items():
        minimum, how = int(r["arena"]), "arena_used rounded up to 16, not verified"
        if not args.no_verify_arena:
            minimum, how = _verified_minimum(config, export_dir, combo), "verified on the firmware"
        chosen32 = board_arena_from_target32(minimum)
        r.update(min32=minimum, min32_how=how, chosen=board_arena, chosen32=chosen32)
        print(
            f"arena {combo}: chosen {board_arena} B (export, sized from the {sized_from} figure) / 32-bit "
            f"minimum {minimum} B ({how}) = {board_arena / minimum:.3f}; with firmware.arena_target: "
            f"{chosen32} B = {chosen32 / minimum:.3f}",
            flush=True,
        )
    return {"model": name, "export_dir": str(export_dir), "macs": macs, "rows": rows, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--models", default="demo,tcn", help="demo, tcn, or name=EXPORT_DIR, comma-separated")
    ap.add_argument("--job-root", type=Path, default=REPO / "job", help="exports kept in <job-root>/<name>")
    ap.add_argument("--tcn-epochs", type=int, default=2, help="training epochs when the TCN is built")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--combos", default=",".join(ALL))
    ap.add_argument(
        "--all-kernels", action="store_true", help="link the full library, not the model's kernels"
    )
    ap.add_argument(
        "--no-verify-arena",
        action="store_true",
        help="skip the firmware builds that verify the 32-bit minimum",
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    h = _harness()
    trees = tflm_lib.TflmTrees.locate()
    tflm_lib.require_trees(trees, "cmsis_nn")
    models = [_model_spec(s, args.job_root.resolve(), args.tcn_epochs) for s in args.models.split(",")]
    results = [bench_model(h, trees, name, config, export_dir, args) for name, config, export_dir in models]
    if len(results) > 1:
        base = results[0]
        for other in results[1:]:
            pairs = [
                f"{c} {other['rows'][c]['median'] / base['rows'][c]['median']:.2f}x"
                for c in other["rows"]
                if c in base["rows"]
            ]
            print(f"\n{other['model']} / {base['model']} instructions (median): " + ", ".join(pairs))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _verified_minimum(config: Path, export_dir: Path, combo: str) -> int:
    """The 32-bit minimum on the board firmware for ``combo`` (hkdeploy.platforms.arena32)."""
    from hkdeploy.config import load_params
    from hkdeploy.platforms.arena32 import measure

    core, kernels = combo.split(":")
    target = "qemu_m55" if core == "cortex-m55" else "qemu_m4"
    with tempfile.TemporaryDirectory(prefix="qemu_bench-arena-") as tmp:
        params = load_params(config, overrides=[f"firmware.tflm_kernels={kernels}"], job_dir=Path(tmp)).params
        return measure(params, export_dir, tflm_lib.export_ops(export_dir), target, Path(tmp) / "work").bytes


if __name__ == "__main__":
    sys.exit(main())
