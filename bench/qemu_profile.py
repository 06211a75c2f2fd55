"""Which functions an inference spends its instructions in, on emulated Cortex-M4 / Cortex-M55.

No profiler in the firmware: QEMU logs every translated block (``-d in_asm``: its guest
instructions) and every block it executes (``-d exec,nochain``: no chaining, so every execution is
logged), and the instructions of each executed block are added to the function QEMU names for it
(the ELF's symbols). The engine test harness (tests/platform/engine_harness, as bench/qemu_bench.py
builds it) runs once over one test frame and once over two; the difference is exactly one
inference (frame 1's ``Invoke()``), without start-up, AllocateTensors and the harness's
re-invoke of frame 0. Also counted per function: instructions in the coprocessor encoding space
(``v*``: every Helium (MVE) and FPU instruction; the int8 kernels use no FPU instructions).

Runs without ``-icount`` (the instruction stream does not depend on it; only SysTick readings
do), so the sum is checked against bench/qemu_bench.py's ``-icount`` figure, not replaced by it.

Usage: ``python bench/qemu_profile.py [--export-dir job/demo/export] [--combos cortex-m55:cmsis_nn,...]
[--top 12] [--extra-flags=-DARM_MATH_AUTOVECTORIZE]`` (``--extra-flags`` builds the library with
more flags, e.g. to see what a flag does; the cache key includes them).
Needs what bench/qemu_bench.py needs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from qemu_bench import REPO, _harness

sys.path.insert(0, str(REPO))

from hkdeploy.platforms import tflm_lib

_IN = re.compile(r"^IN: ?(.*)$")
_INSN = re.compile(r"^0x([0-9a-f]+):\s+((?:[0-9a-f]{4}\s){1,2})")
_EXEC = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def count_thumb(halfwords: list[int]) -> tuple[int, int]:
    """(instructions, vector/FP instructions) in a block's Thumb halfwords.

    Decoded from the encodings, not from QEMU's disassembly (QEMU 7.2's disassembler does not know
    Armv8.1-M: it shows MVE instructions as ``ldc`` / ``.byte`` pieces). A first halfword 0b11101,
    0b11110 or 0b11111 in its top 5 bits starts a 32-bit instruction; 0xEC00-0xEFFF and
    0xFC00-0xFFFF are the coprocessor space, where every MVE and FPU instruction is encoded.
    """
    n = nv = i = 0
    while i < len(halfwords):
        hw = halfwords[i]
        n += 1
        if hw >> 11 in (0b11101, 0b11110, 0b11111):
            nv += (hw & 0xEC00) == 0xEC00
            i += 2
        else:
            i += 1
    return n, nv


def parse_log(path: Path) -> tuple[Counter[str], Counter[str]]:
    """(instructions, vector/FP instructions) per function from a ``-d in_asm,exec,nochain`` log."""
    blocks: dict[int, tuple[str, int, int]] = {}  # block start pc -> (function, insns, vector insns)
    insns: Counter[str] = Counter()
    vec: Counter[str] = Counter()
    name, start, hws = "", -1, list[int]()

    def close() -> None:
        if start >= 0 and hws:
            blocks[start] = (name or "?", *count_thumb(hws))

    with path.open(errors="replace") as log:
        for line in log:
            if line.startswith("Trace "):
                m = _EXEC.match(line)
                if m is None:
                    continue
                close()
                start, hws = -1, []
                fn, n, nv = blocks.get(int(m.group(1), 16), ("?", 0, 0))
                insns[fn] += n
                vec[fn] += nv
                continue
            m_in = _IN.match(line)
            if m_in is not None:
                close()
                name, start, hws = m_in.group(1).strip(), -1, []
                continue
            m_insn = _INSN.match(line)
            if m_insn is not None:
                if start < 0:
                    start = int(m_insn.group(1), 16)
                hws += [int(t, 16) for t in m_insn.group(2).split()]
    close()
    return insns, vec


def profile(elf: Path, core: str, work: Path) -> tuple[Counter[str], Counter[str]]:
    h = _harness()
    log = work / f"{elf.parent.name}.log"
    argv = ["qemu-system-arm", "-M", h.MACHINES[core][0], "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-d", "in_asm,exec,nochain", "-D", str(log),
            "-kernel", str(elf)]  # fmt: skip
    res = subprocess.run(
        argv, capture_output=True, text=True, timeout=1800, check=False, start_new_session=True
    )
    if res.returncode != 0:
        sys.exit(f"{elf}: exit {res.returncode}\n{res.stdout[-800:]}")
    try:
        return parse_log(log)
    finally:
        log.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--export-dir", type=Path, default=REPO / "job" / "demo" / "export")
    ap.add_argument("--combos", default="cortex-m4:cmsis_nn,cortex-m55:cmsis_nn")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--extra-flags", default="", help="more library flags, space-separated")
    args = ap.parse_args(argv)
    h = _harness()
    trees = tflm_lib.TflmTrees.locate()
    export_dir = args.export_dir.resolve()
    data = np.load(export_dir / "test_data.npz")
    ops = tflm_lib.export_ops(export_dir)
    with tempfile.TemporaryDirectory(prefix="qemu_profile-") as tmp:
        work = Path(tmp)
        for n in (1, 2):
            data["input_raw"][:n].astype(np.int8).tofile(work / f"in{n}.bin")
        for combo in args.combos.split(","):
            core, kernels = combo.split(":")
            lib = tflm_lib.build_library(trees, core, kernels, ops=ops, extra_flags=args.extra_flags.split())
            runs = []
            for n in (1, 2):
                d = work / f"{core}-{kernels}-{n}"
                elf = h.build_harness(lib, export_dir, d, 1 << 17, work / f"in{n}.bin", d / "out.bin")
                runs.append(profile(elf, core, work))
            (i1, v1), (i2, v2) = runs
            insns, vec = i2 - i1, v2 - v1
            total = sum(insns.values())
            flags = f" {args.extra_flags}" if args.extra_flags else ""
            print(f"\n{combo}{flags}: {total / 1e6:.3f} M instructions in one inference (frame 1), "
                  f"{sum(vec.values()) / 1e6:.3f} M of them v*")  # fmt: skip
            print(f"{'function':44} {'instructions':>12} {'share':>6} {'v*':>9}")
            for fn, n in insns.most_common(args.top):
                print(f"{fn[:44]:44} {n:12d} {n / total:6.1%} {vec[fn]:9d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
