"""hkdeploy.platforms.tflm_lib against a miniature tree laid out like upstream's (a test double).

The fake tree has TFLM's layout and a sources.inc in TFLM's format, but only a handful of tiny
sources, so the selection rules (tests and benchmarks out, cortex_m_generic's debug_log.cc, CMSIS-NN
kernels replacing reference ones, float CMSIS-NN out), tree location, the missing-tree errors and the
cache (reuse, a new key when a source changes) are checked in a second. The real trees are exercised
by tests/platform/test_tflm_lib.py (opt-in).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hkdeploy.errors import EXIT_TOOL, ToolError, UserError
from hkdeploy.platforms import tflm_lib

SOURCES_INC = """\
# a miniature of TFLM's tools/make/sources.inc
MICROLITE_TEST_SRCS := \\
$(TENSORFLOW_ROOT)tensorflow/lite/micro/micro_log_test.cc \\
$(TENSORFLOW_ROOT)tensorflow/lite/micro/memory_planner/planner_test.cc

MICROLITE_CC_KERNEL_SRCS := \\
$(TENSORFLOW_ROOT)tensorflow/lite/micro/kernels/add.cc \\
$(TENSORFLOW_ROOT)tensorflow/lite/micro/kernels/conv.cc

MICROLITE_CC_SIGNAL_KERNEL_SRCS := \\
$(TENSORFLOW_ROOT)signal/src/window.cc

MICROLITE_TEST_HDRS := \\
$(wildcard $(TENSORFLOW_ROOT)tensorflow/lite/micro/testing/*.h)
"""

TFLM_FILES = [
    "tensorflow/lite/micro/micro_interpreter.cc",
    "tensorflow/lite/micro/debug_log.cc",
    "tensorflow/lite/micro/micro_time.cc",
    "tensorflow/lite/micro/micro_log_test.cc",
    "tensorflow/lite/micro/cortex_m_generic/debug_log.cc",
    "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/planner_test.cc",
    "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/tflite_bridge/micro_error_reporter.cc",
    "tensorflow/lite/micro/benchmarks/person_detection_benchmark.cc",
    "tensorflow/lite/micro/kernels/add.cc",
    "tensorflow/lite/micro/kernels/conv.cc",
    "tensorflow/lite/micro/kernels/not_in_the_list.cc",
    "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc",
    "tensorflow/lite/array.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/experimental/excluded.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "signal/src/window.cc",
]
CMSIS_NN_FILES = [
    "Source/ConvolutionFunctions/arm_convolve_s8.c",
    "Source/ActivationFunctions/arm_relu_f32.c",
    "Source/NNSupportFunctions/arm_nntables_flt.c",
    "Source/NNSupportFunctions/arm_nntables.c",
]


def _symbol(rel: str) -> str:
    return "hk_fake_" + "".join(c if c.isalnum() else "_" for c in rel)


def make_fake_trees(root: Path) -> tuple[Path, Path]:
    """A fake tflite-micro tree and a fake downloads folder (test doubles) under ``root``."""
    tflm, dl = root / "tflite-micro", root / "downloads"
    (tflm / tflm_lib.SOURCES_INC).parent.mkdir(parents=True)
    (tflm / tflm_lib.SOURCES_INC).write_text(SOURCES_INC)
    for rel in TFLM_FILES:
        p = tflm / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            f'#include "tensorflow/lite/micro/hk_fake.h"\nextern "C" int {_symbol(rel)}() {{ return HK_FAKE; }}\n'
        )
    (tflm / "tensorflow/lite/micro/hk_fake.h").write_text("#define HK_FAKE 1\n")
    for rel in CMSIS_NN_FILES:
        p = dl / "cmsis_nn" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'#include "arm_nnfunctions.h"\nint {_symbol(rel)}(void) {{ return HK_NN; }}\n')
    markers = {
        "cmsis_nn/Include/arm_nnfunctions.h": "#define HK_NN 2\n",
        "cmsis/CMSIS/Core/Include/cmsis_compiler.h": "\n",
        "flatbuffers/include/flatbuffers/flatbuffers.h": "\n",
        "flatbuffers/include/flatbuffers/base.h": f"// {tflm_lib._FB_PATCH_MARK} ...\n",
        "gemmlowp/fixedpoint/fixedpoint.h": "\n",
        "ruy/ruy/profiler/instrumentation.h": "\n",
    }
    for rel, text in markers.items():
        p = dl / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tflm, dl


def _rel(paths: list[Path], root: Path) -> list[str]:
    out = []
    for p in paths:
        for base in (root / "tflite-micro", root / "downloads"):
            if p.is_relative_to(base):
                out.append(str(p.relative_to(base)))
    return out


def test_sources_follow_tflms_makefile_selection(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    ref = _rel(tflm_lib.library_sources(trees, "reference"), tmp_path)
    nn = _rel(tflm_lib.library_sources(trees, "cmsis_nn"), tmp_path)
    for sel in (ref, nn):
        assert "tensorflow/lite/micro/micro_interpreter.cc" in sel
        assert "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc" in sel
        assert "tensorflow/lite/core/c/common.cc" in sel
        assert "tensorflow/compiler/mlir/lite/schema/schema_utils.cc" in sel
        assert "signal/src/window.cc" not in sel  # the signal library needs kissfft; no model op uses it
        assert "tensorflow/lite/micro/cortex_m_generic/debug_log.cc" in sel
        assert "tensorflow/lite/micro/micro_time.cc" in sel
        for out in (
            "tensorflow/lite/micro/debug_log.cc",
            "tensorflow/lite/micro/cortex_m_generic/micro_time.cc",
            "tensorflow/lite/micro/micro_log_test.cc",
            "tensorflow/lite/micro/memory_planner/planner_test.cc",
            "tensorflow/lite/micro/benchmarks/person_detection_benchmark.cc",
            "tensorflow/lite/micro/kernels/not_in_the_list.cc",
            "tensorflow/lite/array.cc",
            "tensorflow/lite/experimental/excluded.cc",
        ):
            assert out not in sel, out
        assert len(sel) == len(set(sel))
    assert "tensorflow/lite/micro/kernels/conv.cc" in ref
    assert not any("cmsis_nn" in s for s in ref)
    assert "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc" in nn
    assert "tensorflow/lite/micro/kernels/conv.cc" not in nn
    assert "tensorflow/lite/micro/kernels/add.cc" in nn  # no CMSIS-NN version: the reference one stays
    assert "cmsis_nn/Source/ConvolutionFunctions/arm_convolve_s8.c" in nn
    assert "cmsis_nn/Source/NNSupportFunctions/arm_nntables.c" in nn
    assert "cmsis_nn/Source/ActivationFunctions/arm_relu_f32.c" not in nn
    assert "cmsis_nn/Source/NNSupportFunctions/arm_nntables_flt.c" not in nn


def test_trees_from_environment_and_tflms_own_downloads(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    env = {"HK_TFLM_ROOT": str(tflm), "HK_TFLM_DOWNLOADS": str(dl)}
    trees = tflm_lib.TflmTrees.locate(environ=env)
    assert trees.tflm == tflm.resolve() and trees.ruy == (dl / "ruy").resolve()
    assert all(s.found for s in tflm_lib.check_trees(trees))
    own = tflm_lib.TflmTrees.locate(tflm_root=tflm, environ={})
    assert own.cmsis_nn == (tflm / tflm_lib.TFLM_DOWNLOADS / "cmsis_nn").resolve()
    explicit = tflm_lib.TflmTrees.locate(environ=env, cmsis_nn_root=tmp_path / "elsewhere")
    assert explicit.cmsis_nn == (tmp_path / "elsewhere").resolve()


def test_missing_trees_are_named_with_what_to_set(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    shutil.rmtree(dl / "gemmlowp")
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    status = {s.name: s for s in tflm_lib.check_trees(trees)}
    assert not status["gemmlowp"].found and "gemmlowp_root" in status["gemmlowp"].detail
    assert status["tflm"].found and status["cmsis_nn"].found
    with pytest.raises(ToolError) as exc:
        tflm_lib.library_sources(trees, "reference")
    assert exc.value.exit_code == EXIT_TOOL
    assert "gemmlowp" in exc.value.message and "cmsis_nn" not in exc.value.message
    assert exc.value.hint and "HK_TFLM_ROOT" in exc.value.hint

    nothing = tflm_lib.TflmTrees.locate(environ={})
    with pytest.raises(ToolError) as exc:
        tflm_lib.library_sources(nothing, "cmsis_nn")
    for name in tflm_lib.TREES:
        assert f"{name}:" in exc.value.message
    assert "HK_TFLM_ROOT" in exc.value.message


def test_reference_kernels_need_no_cmsis_nn(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    shutil.rmtree(dl / "cmsis_nn")
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    assert tflm_lib.library_sources(trees, "reference")
    with pytest.raises(ToolError, match="cmsis_nn"):
        tflm_lib.library_sources(trees, "cmsis_nn")


def test_flags_per_core_and_kernels() -> None:
    m4 = tflm_lib.compile_flags("cortex-m4", "cmsis_nn")
    m55 = tflm_lib.compile_flags("cortex-m55", "reference")
    assert "-mcpu=cortex-m4" in m4 and "-mfloat-abi=hard" in m4 and "-DCMSIS_NN" in m4
    assert "-DARM_MATH_MVEI" not in m4
    assert "-mcpu=cortex-m55" in m55 and "-DARM_MATH_MVEI" in m55 and "-DCMSIS_NN" not in m55
    # CMSIS-NN tests `#if defined(ARM_MATH_AUTOVECTORIZE)`: any definition drops its MVE assembly
    assert not [f for f in m55 + m4 if f.startswith("-DARM_MATH_AUTOVECTORIZE")]
    assert "-DTF_LITE_STATIC_MEMORY" in m4 and "-O2" in m4
    with pytest.raises(Exception, match="cortex-m7"):
        tflm_lib.compile_flags("cortex-m7", "cmsis_nn")


def test_cache_root_honours_xdg(tmp_path: Path) -> None:
    assert tflm_lib.cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "hkdeploy" / "tflm"


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
    reason="needs arm-none-eabi-gcc and make: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi "
    "libstdc++-arm-none-eabi-newlib make",
)
def test_build_is_cached_and_rebuilt_when_a_source_changes(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    cache = tmp_path / "cache"
    first = tflm_lib.build_library(trees, "cortex-m4", "cmsis_nn", cache=cache, jobs=2)
    assert not first.cached and first.path.is_file() and first.path.parent.parent == cache
    syms = subprocess.run(
        ["arm-none-eabi-nm", str(first.path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert _symbol("tensorflow/lite/micro/kernels/cmsis_nn/conv.cc") in syms
    assert _symbol("tensorflow/lite/micro/kernels/conv.cc") not in syms
    assert _symbol("Source/ConvolutionFunctions/arm_convolve_s8.c") in syms
    attrs = subprocess.run(
        ["arm-none-eabi-readelf", "-A", str(first.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert (
        "Tag_CPU_arch: v7E-M" in attrs
        and "Tag_FP_arch: VFPv4-D16" in attrs
        and "Tag_ABI_VFP_args: VFP registers" in attrs
    )
    assert not list(cache.glob(".build-*")), "the temporary build folder is left behind"

    again = tflm_lib.build_library(trees, "cortex-m4", "cmsis_nn", cache=cache, jobs=2)
    assert again.cached and again.path == first.path and again.key == first.key

    (tflm / "tensorflow/lite/micro/hk_fake.h").write_text("#define HK_FAKE 3\n")  # a header changes
    changed = tflm_lib.build_library(trees, "cortex-m4", "cmsis_nn", cache=cache, jobs=2)
    assert not changed.cached and changed.key != first.key

    other = tflm_lib.build_library(trees, "cortex-m55", "reference", cache=cache, jobs=2)
    assert other.key not in (first.key, changed.key)
    attrs = subprocess.run(
        ["arm-none-eabi-readelf", "-A", str(other.path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Tag_CPU_arch: v8.1-M.mainline" in attrs and "Tag_MVE_arch: MVE Integer" in attrs


@pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
    reason="needs arm-none-eabi-gcc and make: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi make",
)
def test_compile_failure_is_a_tool_error_and_leaves_no_library(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    (tflm / "tensorflow/lite/micro/kernels/add.cc").write_text("this is not C++\n")
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    cache = tmp_path / "cache"
    with pytest.raises(ToolError) as exc:
        tflm_lib.build_library(trees, "cortex-m4", "reference", cache=cache, jobs=1)
    assert exc.value.exit_code == EXIT_TOOL
    assert not list(cache.glob("**/libtflm.a"))
    assert not list(cache.glob(".new-*"))
    # fixed: the build resumes; objects compiled before the failure are not compiled again
    objs = {p: p.stat().st_mtime_ns for p in cache.glob("build-*/obj/*.o")}
    assert objs
    (tflm / "tensorflow/lite/micro/kernels/add.cc").write_text('extern "C" int hk_fixed() { return 0; }\n')
    lib = tflm_lib.build_library(trees, "cortex-m4", "reference", cache=cache, jobs=1)
    assert lib.path.is_file() and not lib.cached
    assert all(p.stat().st_mtime_ns == t for p, t in objs.items())


def test_config_fields_and_environment_name_the_trees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hkdeploy.config import load_params

    tflm, dl = make_fake_trees(tmp_path)
    monkeypatch.setenv("HK_TFLM_ROOT", str(tflm))
    monkeypatch.setenv("HK_TFLM_DOWNLOADS", str(dl))
    loaded = load_params(data={"name": "t"}, job_dir=tmp_path / "job")
    fw = loaded.params.firmware
    assert fw.tflm_root == tflm.resolve() and fw.tflm_downloads == dl.resolve()
    assert fw.tflm_kernels == "cmsis_nn"
    trees = tflm_lib.TflmTrees.from_params(fw, environ={})
    assert all(s.found for s in tflm_lib.check_trees(trees))

    monkeypatch.delenv("HK_TFLM_ROOT")
    monkeypatch.delenv("HK_TFLM_DOWNLOADS")
    own = load_params(
        data={
            "name": "t",
            "firmware": {"tflm_root": str(tflm), "ruy_root": str(dl / "ruy"), "tflm_kernels": "reference"},
        },
        job_dir=tmp_path / "job",
    ).params.firmware
    trees = tflm_lib.TflmTrees.from_params(own, environ={})
    assert trees.ruy == (dl / "ruy").resolve()
    assert trees.gemmlowp == (tflm / tflm_lib.TFLM_DOWNLOADS / "gemmlowp").resolve()  # TFLM's own downloads/
    assert own.tflm_kernels == "reference"
    with pytest.raises(Exception, match="tflm_kernels"):
        load_params(data={"name": "t", "firmware": {"tflm_kernels": "helium"}}, job_dir=tmp_path / "job")


def test_doctor_lists_each_tree_and_the_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hkdeploy.config import load_params
    from hkdeploy.doctor import tflm_source_checks

    tflm, dl = make_fake_trees(tmp_path)
    shutil.rmtree(dl / "cmsis_nn")
    monkeypatch.delenv("HK_TFLM_ROOT", raising=False)
    monkeypatch.delenv("HK_TFLM_DOWNLOADS", raising=False)
    params = load_params(
        data={"name": "t", "firmware": {"tflm_root": str(tflm), "tflm_downloads": str(dl)}},
        job_dir=tmp_path / "j",
    ).params
    checks = {c.name: c for c in tflm_source_checks(params, required=True)}
    assert checks["TFLM source: tflm"].ok and checks["TFLM source: ruy"].ok
    nn = checks["TFLM source: cmsis_nn"]
    assert not nn.ok and nn.required and "cmsis_nn_root" in nn.detail and "HK_TFLM_ROOT" in nn.hint
    assert "Ambiq" in checks["TFLM licence"].detail


def test_engine_build_carries_the_librarys_defines(tmp_path: Path) -> None:
    flags = tflm_lib.compile_flags("cortex-m55", "cmsis_nn")
    lib = tflm_lib.TflmLibrary(
        tmp_path / "libtflm.a", [tmp_path / "inc"], flags, "k", "cortex-m55", "cmsis_nn", 1, True
    )
    eb = tflm_lib.engine_build(lib, tmp_path / "export")
    assert eb.sources[0].name == "hk_engine_tflm.cc" and eb.sources[0].is_file()
    assert eb.include_dirs == [tmp_path / "export"] and eb.system_include_dirs == [tmp_path / "inc"]
    assert eb.defines["CMSIS_NN"] is None and eb.defines["ARM_MATH_MVEI"] is None
    assert eb.defines["FLATBUFFERS_LOCALE_INDEPENDENT"] == "0" and eb.defines["HK_TFLM_LOG_CALLBACK"] == "1"
    assert "TF_LITE_STATIC_MEMORY" in eb.defines
    assert eb.libs == [tmp_path / "libtflm.a", "-lm"]


def test_an_op_list_keeps_only_those_kernels(tmp_path: Path) -> None:
    tflm, dl = make_fake_trees(tmp_path)
    trees = tflm_lib.TflmTrees.locate(tflm_root=tflm, downloads=dl, environ={})
    nn = _rel(tflm_lib.library_sources(trees, "cmsis_nn", ["CONV_2D"]), tmp_path)
    assert "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc" in nn
    assert "tensorflow/lite/micro/kernels/add.cc" not in nn
    assert "tensorflow/lite/micro/micro_interpreter.cc" in nn  # the framework stays whole
    ref = _rel(tflm_lib.library_sources(trees, "reference", ["add"]), tmp_path)
    assert (
        "tensorflow/lite/micro/kernels/add.cc" in ref and "tensorflow/lite/micro/kernels/conv.cc" not in ref
    )
    with pytest.raises(UserError, match="TILE"):
        tflm_lib.library_sources(trees, "reference", ["CONV_2D", "TILE"])
    assert {
        "conv",
        "conv_common",
        "pooling",
        "pooling_common",
        "reduce",
        "kernel_util",
    } <= tflm_lib.kernel_stems(["CONV_2D", "MAX_POOL_2D", "MEAN"])
