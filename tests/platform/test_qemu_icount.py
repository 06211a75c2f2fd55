"""Opt-in: what QEMU's ``-icount shift=0`` counts on the emulated Cortex-M55 (mps3-an547).

bench/qemu_bench.py turns SysTick ticks under ``-icount shift=0`` into instructions (1 instruction
= 1 virtual ns). This checks the unit for Helium code: a loop of 4 instructions (``vldrb.8``,
``vldrb.8``, ``vmladava.s8``, ``letp``) counts 4 per iteration, not the instruction's beats, and a
2-instruction scalar loop 2, with the engine harness's startup (tests/platform/engine_harness).

Needs arm-none-eabi-gcc with newlib (librdimon) and qemu-system-arm; skips naming what is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parent / "engine_harness"
FLAGS = ["-mcpu=cortex-m55", "-mfpu=auto", "-mfloat-abi=hard", "-mthumb", "-O2"]
ITERATIONS = 4096  # MVE loop: 16 bytes per iteration
SCALAR = 100_000

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
    reason="needs arm-none-eabi-gcc and qemu-system-arm: apt-get install gcc-arm-none-eabi "
    "libnewlib-arm-none-eabi qemu-system-arm",
)

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
extern volatile uint32_t g_harness_systick_wraps;
static volatile uint32_t *const csr = (uint32_t *)0xE000E010u, *const rvr = (uint32_t *)0xE000E014u,
                         *const cvr = (uint32_t *)0xE000E018u;
static uint64_t ticks(void) {
    uint32_t w, v;
    do { w = g_harness_systick_wraps; v = *cvr; } while (w != g_harness_systick_wraps);
    return (uint64_t)w * 0x1000000u + (0xFFFFFFu - v);
}
static int8_t a[16 * ITERATIONS] __attribute__((aligned(16))), b[16 * ITERATIONS] __attribute__((aligned(16)));
__attribute__((noinline)) int32_t mve_dot(const int8_t *x, const int8_t *y, int32_t n) {
    int32_t acc;
    __asm volatile("  mov %[acc], #0\n  wlstp.8 lr, %[n], 1f\n"
                   "2: vldrb.8 q0, [%[x]], #16\n  vldrb.8 q1, [%[y]], #16\n"
                   "  vmladava.s8 %[acc], q0, q1\n  letp lr, 2b\n1:\n"
                   : [acc] "=&Te"(acc), [x] "+r"(x), [y] "+r"(y) : [n] "r"(n) : "q0", "q1", "lr", "memory");
    return acc;
}
__attribute__((noinline)) void scalar_loop(int32_t n) {
    __asm volatile("1: subs %0, %0, #1\n  bne 1b\n" : "+r"(n)::"cc");
}
int main(void) {
    *rvr = 0xFFFFFFu; *cvr = 0u; *csr = 7u;
    for (int i = 0; i < (int)sizeof a; i++) { a[i] = (int8_t)i; b[i] = (int8_t)(3 * i); }
    int32_t want = 0;
    for (int i = 0; i < (int)sizeof a; i++) want += a[i] * b[i];
    uint64_t t0 = ticks(); scalar_loop(SCALAR); uint64_t t1 = ticks();
    printf("SCALAR %llu\n", (unsigned long long)(t1 - t0));
    t0 = ticks(); int32_t got = mve_dot(a, b, (int32_t)sizeof a); t1 = ticks();
    printf("MVE %llu %s\n", (unsigned long long)(t1 - t0), got == want ? "ok" : "WRONG");
    return 0;
}
"""


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def test_icount_counts_one_per_mve_instruction(tmp_path: Path) -> None:
    src = tmp_path / "icount.c"
    src.write_text(PROGRAM)
    defs = [f"-DITERATIONS={ITERATIONS}", f"-DSCALAR={SCALAR}"]
    objs = []
    for c in (HARNESS / "harness_startup.c", src):
        obj = tmp_path / (c.stem + ".o")
        res = _run(["arm-none-eabi-gcc", *FLAGS, *defs, "-c", str(c), "-o", str(obj)])
        assert res.returncode == 0, res.stderr
        objs.append(str(obj))
    elf = tmp_path / "icount.elf"
    res = _run(["arm-none-eabi-gcc", *FLAGS, "--specs=rdimon.specs", "-nostartfiles", f"-L{HARNESS}",
                "-T", str(HARNESS / "harness_an547.ld"), *objs, "-o", str(elf)])  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        ["qemu-system-arm", "-M", "mps3-an547", "-nographic", "-monitor", "none", "-serial", "none",
         "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=120, check=False, start_new_session=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-1000:]
    m = re.search(r"^SCALAR (\d+)$", res.stdout, re.MULTILINE)
    v = re.search(r"^MVE (\d+) (\w+)$", res.stdout, re.MULTILINE)
    assert m is not None and v is not None, res.stdout
    assert v.group(2) == "ok"  # the loop really ran the dot product
    per_tick = 1e9 / 32_000_000  # SysTick at 32 MHz on an547: 31.25 instructions per tick
    scalar, mve = int(m.group(1)) * per_tick, int(v.group(1)) * per_tick
    assert abs(scalar - 2 * SCALAR) < 100, scalar  # 100: a few ticks of call and timer reads
    assert abs(mve - 4 * ITERATIONS) < 100, mve  # 4 per iteration: 1 per MVE instruction, no beats
