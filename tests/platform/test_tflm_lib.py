"""Opt-in: upstream TFLM + CMSIS-NN built from source for Cortex-M4 and Cortex-M55, and the board
engine (firmware/engine/hk_engine_tflm.cc) compiled and linked against it with the demo export.

Needs the upstream trees (docs/tflm.md): ``HK_TFLM_ROOT=<tflite-micro>`` and
``HK_TFLM_DOWNLOADS=<folder with cmsis, cmsis_nn, flatbuffers, gemmlowp, ruy>`` (or the trees in
TFLM's own ``tensorflow/lite/micro/tools/make/downloads``), plus arm-none-eabi-gcc/g++ with newlib.
Without them every test here skips and says what to provide. The first run compiles each library
(minutes: the demo model's kernels; ``HK_TFLM_TEST_ALL_KERNELS=1`` for TFLM's full library); later
runs reuse the cache (``$XDG_CACHE_HOME/hkdeploy/tflm``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hkdeploy.platforms import tflm_lib
from tests.platform.qemu_support import TREES, needs_arm_cxx, needs_tflm_trees

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "firmware" / "engine" / "hk_engine_tflm.cc"
pytestmark = [needs_tflm_trees, needs_arm_cxx]

COMBOS = [
    ("cortex-m4", "cmsis_nn"),
    ("cortex-m4", "reference"),
    ("cortex-m55", "cmsis_nn"),
    ("cortex-m55", "reference"),
]

# The link core's and platform's functions the engine's ELF needs, stubbed for a link check only.
_LINK_STUB = r"""
#include <stdint.h>
#include "hk_engine.h"
static hk_engine_info_t info;
uint32_t hk_platform_cycles(void) { return 0u; } /* the platform's counter (stub) */
int main(void) {
    uint32_t cycles = 0;
    if (hk_engine_init(&info) != 0) return 1;
    uint8_t *in = hk_engine_input();
    for (uint32_t i = 0; i < info.input.bytes; i++) in[i] = 0;
    return hk_engine_invoke(&cycles) == 0 && hk_engine_output() != 0 ? 0 : 2;
}
"""


def _run(argv: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{c}-{k}" for c, k in COMBOS])
def library(request: pytest.FixtureRequest, exported_demo) -> tflm_lib.TflmLibrary:  # type: ignore[no-untyped-def]
    """The demo model's library (its kernels; framework and CMSIS-NN whole), as the QEMU build makes
    it; HK_TFLM_TEST_ALL_KERNELS=1 builds every kernel instead (TFLM's full library, much longer)."""
    core, kernels = request.param
    ops = (
        None
        if os.environ.get("HK_TFLM_TEST_ALL_KERNELS")
        else tflm_lib.export_ops(Path(exported_demo.export_dir))
    )
    return tflm_lib.build_library(TREES, core, kernels, ops=ops, jobs=2)


def test_library_has_the_kernels_asked_for(library: tflm_lib.TflmLibrary) -> None:
    syms = _run(["arm-none-eabi-nm", "-C", "--defined-only", str(library.path)]).stdout
    assert "tflite::MicroInterpreter::Invoke()" in syms
    assert "tflite::Register_CONV_2D()" in syms
    if library.kernels == "cmsis_nn":
        assert " arm_convolve_wrapper_s8" in syms and " arm_fully_connected_s8" in syms
    else:
        assert " arm_convolve_wrapper_s8" not in syms
    attrs = _run(["arm-none-eabi-readelf", "-A", str(library.path)]).stdout
    if library.core == "cortex-m4":
        assert "Tag_CPU_arch: v7E-M" in attrs and "Tag_MVE_arch" not in attrs
    else:
        assert "Tag_CPU_arch: v8.1-M.mainline" in attrs and "Tag_MVE_arch: MVE Integer" in attrs
    assert "Tag_ABI_VFP_args: VFP registers" in attrs  # hard float


def _function_disassembly(lib: Path, name: str) -> list[str]:
    """Mnemonics of one function in an archive, decoded as Armv8.1-M (objdump otherwise shows MVE
    instructions as ``ldc``/``stc``)."""
    dis = _run(["arm-none-eabi-objdump", "-d", "-m", "armv8.1-m.main", str(lib)]).stdout
    body = dis.split(f"<{name}>:\n", 1)[1].split("\n\n", 1)[0]
    return [ln.split("\t")[2].split()[0] for ln in body.splitlines() if ln.count("\t") >= 2]


def test_cmsis_nn_matrix_kernel_uses_helium_on_the_m55(library: tflm_lib.TflmLibrary) -> None:
    """Issue 11: with ARM_MATH_AUTOVECTORIZE defined (even as 0) CMSIS-NN compiles plain-C inner
    loops instead of its MVE assembly, and the M55 ran the demo in 3.5x the instructions."""
    if library.kernels != "cmsis_nn":
        pytest.skip("CMSIS-NN kernels only")
    ops = _function_disassembly(library.path, "arm_nn_mat_mult_nt_t_s8")
    if library.core == "cortex-m55":
        # vmlava.s8 is objdump's name for vmladava.s8 (16 int8 multiply-accumulates)
        assert {"vldrb.u8", "vmlava.s8", "wlstp.8", "letp"} <= set(ops), sorted(set(ops))
    else:
        assert not [op for op in ops if op.startswith(("vldr", "vmla", "wlstp", "letp"))]
        assert "smlad" in ops  # the DSP path


def test_second_build_is_taken_from_the_cache(library: tflm_lib.TflmLibrary) -> None:
    ops = library.manifest.get("ops")
    again = tflm_lib.build_library(
        TREES,
        library.core,
        library.kernels,
        ops=None if ops == "all" else list(ops),
        jobs=2,  # type: ignore[arg-type]
    )
    assert again.cached and again.path == library.path and again.key == library.key


def test_engine_compiles_and_links_against_the_library(
    library: tflm_lib.TflmLibrary,
    exported_demo,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    export_dir = Path(exported_demo.export_dir)
    incs = [f"-I{d}" for d in library.include_dirs]
    common = [*library.cflags, f"-I{export_dir}", f"-I{REPO / 'firmware' / 'engine'}", *incs]
    obj = tmp_path / "engine.o"
    res = _run(
        [
            "arm-none-eabi-g++",
            *common,
            *tflm_lib.CXX_FLAGS,
            "-Wall",
            "-Wextra",
            "-c",
            str(ENGINE),
            "-o",
            str(obj),
        ]
    )
    assert res.returncode == 0, res.stderr
    (tmp_path / "stub.c").write_text(_LINK_STUB)
    stub = tmp_path / "stub.o"
    res = _run(["arm-none-eabi-gcc", *common, "-c", str(tmp_path / "stub.c"), "-o", str(stub)])
    assert res.returncode == 0, res.stderr
    elf = tmp_path / "engine.elf"
    res = _run(
        [
            "arm-none-eabi-g++",
            *library.cflags,
            "--specs=nosys.specs",
            "-Wl,--gc-sections",
            str(stub),
            str(obj),
            str(library.path),
            "-lm",
            "-o",
            str(elf),
        ]
    )
    assert res.returncode == 0, res.stderr  # every TFLM symbol the engine needs is in the library
    syms = _run(["arm-none-eabi-nm", "-C", str(elf)]).stdout
    assert "tflite::MicroInterpreter::Invoke()" in syms
    if library.kernels == "cmsis_nn":
        assert "arm_convolve" in syms  # the demo's CONV_2D ran through CMSIS-NN, not the reference kernel
