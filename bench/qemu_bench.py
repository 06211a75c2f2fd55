"""Instructions per inference of the board engine on emulated Cortex-M4 / Cortex-M55, and the arena
the model needs on the 32-bit target.

For an export (default: ``job/demo/export``; make one with ``hkdeploy export -c configs/demo.json``):
builds upstream TFLM from source for each (core, kernels) (hkdeploy.platforms.tflm_lib, cached),
links firmware/engine/hk_engine_tflm.cc with the test-double platform of
tests/platform/engine_harness, runs it in qemu-system-arm under ``-icount shift=0`` over the first
``--frames`` test frames, and prints per combination: instructions per inference (min / median /
max; SysTick ticks x 1e9 / SysTick rate), frames equal to the host TFLM golden, and TFLM's
arena_used on the 32-bit build; then the ratios reference / optimized per core and the arena ratio:
the export's board arena (the arena chosen) / the 32-bit minimum, the minimum verified on the real
firmware by hkdeploy.platforms.arena32 (it allocates, 16 B less does not; ``--no-verify-arena``:
arena_used rounded up to 16, unverified), and what ``firmware.arena_target`` would choose.

Needs HK_TFLM_ROOT / HK_TFLM_DOWNLOADS (docs/tflm.md), arm-none-eabi-gcc + newlib, qemu-system-arm.
Usage: ``python bench/qemu_bench.py [--export-dir DIR] [--frames 5] [--combos cortex-m4:cmsis_nn,...]``
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hkdeploy.platforms import tflm_lib  # noqa: E402

ALL = ["cortex-m4:reference", "cortex-m4:cmsis_nn", "cortex-m55:reference", "cortex-m55:cmsis_nn"]


def _harness():
    spec = importlib.util.spec_from_file_location("engine_qemu", REPO / "tests/platform/test_engine_qemu.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--export-dir", type=Path, default=REPO / "job" / "demo" / "export")
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
    args = ap.parse_args(argv)
    h = _harness()
    trees = tflm_lib.TflmTrees.locate()
    tflm_lib.require_trees(trees, "cmsis_nn")
    export_dir = args.export_dir.resolve()
    data = np.load(export_dir / "test_data.npz")
    golden = data["tflm"].reshape(len(data["tflm"]), -1)[: args.frames]
    board_arena = h.config_define(export_dir, "HK_MODEL_ARENA_SIZE")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="qemu_bench-") as tmp:
        work = Path(tmp)
        inputs = work / "inputs.bin"
        data["input_raw"][: args.frames].astype(np.int8).tofile(inputs)
        for combo in args.combos.split(","):
            core, kernels = combo.split(":")
            ops = None if args.all_kernels else tflm_lib.export_ops(export_dir)
            lib = tflm_lib.build_library(trees, core, kernels, ops=ops)  # cached after the first run
            out = work / f"{core}-{kernels}.bin"
            elf = h.build_harness(lib, export_dir, work / f"{core}-{kernels}", 1 << 17, inputs, out)
            run = h.run_harness(core, elf, out, golden.shape[1], timeout=3600)
            if run.returncode != 0 or run.outputs is None:
                print(f"{combo}: failed (exit {run.returncode})\n{run.stdout[-800:]}")
                continue
            ins = [h.instructions(core, t) for t in run.ticks]
            same = int((run.outputs == golden).all(axis=1).sum())
            results[combo] = {
                "min": min(ins),
                "median": statistics.median(ins),
                "max": max(ins),
                "arena": (run.init[2] + 15) // 16 * 16,  # TFLM uses the arena in 16-byte units
                "exact": same,
            }
            print(
                f"{combo:22s} instructions/inference min {min(ins) / 1e6:7.3f} M  median "
                f"{statistics.median(ins) / 1e6:7.3f} M  max {max(ins) / 1e6:7.3f} M   "
                f"== golden {same}/{len(golden)}   32-bit minimum arena {(run.init[2] + 15) // 16 * 16} B "
                f"(arena_used {run.init[2]} B)   lib {lib.path.stat().st_size} B",
                flush=True,
            )
    for core, opt in (("cortex-m4", "CMSIS-NN"), ("cortex-m55", "CMSIS-NN Helium")):
        ref, fast = results.get(f"{core}:reference"), results.get(f"{core}:cmsis_nn")
        if ref and fast:
            print(f"{core}: reference / {opt} = {ref['median'] / fast['median']:.1f}x fewer instructions")
    from hkdeploy.export.target32 import board_arena_from_target32

    sized_from = (
        "32-bit target" if "HK_MODEL_ARENA_MIN32" in (export_dir / "model_config.h").read_text() else "host"
    )
    for combo, r in results.items():
        minimum, how = int(r["arena"]), "arena_used rounded up to 16, not verified"
        if not args.no_verify_arena:
            minimum, how = _verified_minimum(export_dir, combo), "verified on the firmware"
        chosen32 = board_arena_from_target32(minimum)
        print(
            f"arena {combo}: chosen {board_arena} B (export, sized from the {sized_from} figure) / 32-bit "
            f"minimum {minimum} B ({how}) = {board_arena / minimum:.3f}; with firmware.arena_target: "
            f"{chosen32} B = {chosen32 / minimum:.3f}",
            flush=True,
        )
    return 0


def _verified_minimum(export_dir: Path, combo: str) -> int:
    """The 32-bit minimum on the board firmware for ``combo`` (hkdeploy.platforms.arena32)."""
    from hkdeploy.config import load_params
    from hkdeploy.platforms.arena32 import measure

    core, kernels = combo.split(":")
    target = "qemu_m55" if core == "cortex-m55" else "qemu_m4"
    with tempfile.TemporaryDirectory(prefix="qemu_bench-arena-") as tmp:
        params = load_params(
            REPO / "configs" / "demo.json", overrides=[f"firmware.tflm_kernels={kernels}"], job_dir=Path(tmp)
        ).params
        return measure(params, export_dir, tflm_lib.export_ops(export_dir), target, Path(tmp) / "work").bytes


if __name__ == "__main__":
    sys.exit(main())
