"""Upstream TFLM (+ CMSIS-NN) built from source into a static library for Cortex-M4 / Cortex-M55.

The user provides the trees (hkdeploy never downloads anything): an upstream tflite-micro checkout and
the trees TFLM's make would download into ``tensorflow/lite/micro/tools/make/downloads``:
``cmsis`` (CMSIS_6), ``cmsis_nn``, ``flatbuffers`` (with TFLM's ``flatbuffers.patch``), ``gemmlowp``,
``ruy``. Each can be given on its own or as one ``downloads`` folder laid out like TFLM's.

Sources are listed the way TFLM's Makefile lists them (``tools/make/sources.inc``): the micro framework
(``micro/*.cc``, ``arena_allocator``, ``memory_planner``, ``tflite_bridge`` and the shared TFLite files
outside ``micro``), minus tests and benchmarks; the kernels and signal kernels named in
``MICROLITE_CC_KERNEL_SRCS`` / ``MICROLITE_CC_SIGNAL_KERNEL_SRCS``; with ``kernels="cmsis_nn"`` the
kernels specialised from ``micro/kernels/cmsis_nn`` (same file name replaces the reference one, as
``specialize_files.py`` does) plus every ``cmsis_nn/Source/**/*.c`` except the float ones (as
``ext_libs/cmsis_nn.inc``). ``debug_log.cc`` comes from ``micro/cortex_m_generic`` (TFLM's
``cortex_m_generic`` target: ``RegisterDebugLogCallback``); ``micro_time.cc`` stays the generic one (no
device header needed; the engine times ``Invoke()`` itself).

The library is compiled with arm-none-eabi-gcc/g++ through a generated Makefile (``make -j``) in a
temporary folder and renamed into ``$XDG_CACHE_HOME/hkdeploy/tflm/<key>/`` (default
``~/.cache/hkdeploy/tflm``), where ``key`` hashes the contents of every source and header that goes in,
the core, the kernel set, the toolchain version and the flags. A second call with the same inputs
reuses it. Licence: only Apache-2.0 upstream trees are used here; neuralSPOT's prebuilt TFLM / helia
libraries and heliaAOT output are licensed for Ambiq CPUs only and must never run on QEMU or the host.

No TensorFlow import here (tests/unit/test_no_tensorflow.py).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hkdeploy import fsutil, proc
from hkdeploy.errors import ToolError, UserError

if TYPE_CHECKING:
    from hkdeploy.config.params import DeployParams, FirmwareParams

Core = Literal["cortex-m4", "cortex-m55"]
Kernels = Literal["cmsis_nn", "reference"]

CORES: tuple[str, ...] = ("cortex-m4", "cortex-m55")
KERNELS: tuple[str, ...] = ("cmsis_nn", "reference")

#: Code-generation flags per core (TFLM's cortex_m_generic_makefile.inc for cortex-m4+fp / cortex-m55).
CORE_FLAGS: dict[str, tuple[str, ...]] = {
    "cortex-m4": ("-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb"),
    "cortex-m55": ("-mcpu=cortex-m55", "-mfpu=auto", "-mfloat-abi=hard", "-mthumb"),
}
#: Defines per core. ARM_MATH_DSP / ARM_MATH_MVEI select CMSIS-NN's DSP / Helium code paths (its
#: arm_nn_math_types.h would derive them from __ARM_FEATURE_DSP / __ARM_FEATURE_MVE too; we say it).
#: Never ARM_MATH_AUTOVECTORIZE, not even ``=0``: CMSIS-NN tests it with ``#if defined(...)``, so any
#: definition swaps its hand-written Helium inner loops (``vldrb.8`` / ``vmladava.s8`` under
#: ``wlstp``/``letp``) for plain C loops that gcc -O2 vectorises poorly (issue 11: 3.5x the
#: instructions of the demo on the M55). TFLM's own makefiles do not define it either.
CORE_DEFINES: dict[str, tuple[str, ...]] = {
    "cortex-m4": ("-DCPU_M4=1", "-DARM_MATH_DSP"),
    "cortex-m55": ("-DCPU_M55=1", "-DARM_MATH_DSP", "-DARM_MATH_MVEI"),
}
#: Flags every object gets (TFLM's COMMON_FLAGS / PLATFORM_FLAGS for a cross build, default BUILD_TYPE).
COMMON_FLAGS: tuple[str, ...] = (
    "-O2",
    "-fno-unwind-tables",
    "-fno-asynchronous-unwind-tables",
    "-ffunction-sections",
    "-fdata-sections",
    "-fmessage-length=0",
    "-fomit-frame-pointer",
    "-funsigned-char",
    "-mlittle-endian",
    "-DTF_LITE_STATIC_MEMORY",
    "-DTF_LITE_DISABLE_X86_NEON",
    "-DTF_LITE_MCU_DEBUG_LOG",
    "-DFLATBUFFERS_LOCALE_INDEPENDENT=0",
    "-DARM_NN_ENABLE_F16=0",
    "-DARM_NN_ENABLE_F32=0",
    "-Wno-unused-parameter",
    "-Wno-type-limits",
)
CXX_FLAGS: tuple[str, ...] = ("-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")
C_FLAGS: tuple[str, ...] = ("-std=c17",)

#: The trees, each with a file that proves it is the right one, and what the user sets to point at it.
TREES: dict[str, tuple[str, str]] = {
    "tflm": ("tensorflow/lite/micro/micro_interpreter.cc", "firmware.tflm_root or $HK_TFLM_ROOT"),
    "cmsis_nn": ("Include/arm_nnfunctions.h", "firmware.cmsis_nn_root or <downloads>/cmsis_nn"),
    "cmsis": ("CMSIS/Core/Include/cmsis_compiler.h", "firmware.cmsis_root or <downloads>/cmsis"),
    "flatbuffers": (
        "include/flatbuffers/flatbuffers.h",
        "firmware.flatbuffers_root or <downloads>/flatbuffers",
    ),
    "gemmlowp": ("fixedpoint/fixedpoint.h", "firmware.gemmlowp_root or <downloads>/gemmlowp"),
    "ruy": ("ruy/profiler/instrumentation.h", "firmware.ruy_root or <downloads>/ruy"),
}
#: TFLM's own downloads folder inside its tree (where its make puts the third-party trees).
TFLM_DOWNLOADS = Path("tensorflow/lite/micro/tools/make/downloads")
SOURCES_INC = Path("tensorflow/lite/micro/tools/make/sources.inc")
_FB_PATCH_MARK = "For TFLM, we always want FLATBUFFERS_LOCALE_INDEPENDENT"

INSTALL_HINT = (
    "point hkdeploy at upstream trees: HK_TFLM_ROOT=<tflite-micro> and HK_TFLM_DOWNLOADS=<folder with "
    "cmsis, cmsis_nn, flatbuffers, gemmlowp, ruy> (or firmware.tflm_root / firmware.tflm_downloads); "
    "docs/tflm.md shows how to lay them out at the revisions TFLM names"
)


@dataclass(frozen=True)
class TflmTrees:
    """Where each upstream tree is (None: not given and not found)."""

    tflm: Path | None = None
    cmsis_nn: Path | None = None
    cmsis: Path | None = None
    flatbuffers: Path | None = None
    gemmlowp: Path | None = None
    ruy: Path | None = None

    @classmethod
    def locate(
        cls,
        *,
        tflm_root: Path | str | None = None,
        downloads: Path | str | None = None,
        cmsis_nn_root: Path | str | None = None,
        cmsis_root: Path | str | None = None,
        flatbuffers_root: Path | str | None = None,
        gemmlowp_root: Path | str | None = None,
        ruy_root: Path | str | None = None,
        environ: dict[str, str] | None = None,
    ) -> TflmTrees:
        """Resolve the trees: explicit root > ``downloads``/<name> > TFLM's own downloads folder.

        ``tflm_root`` and ``downloads`` default to ``$HK_TFLM_ROOT`` / ``$HK_TFLM_DOWNLOADS``.
        """
        env = os.environ if environ is None else environ
        tflm = _path(tflm_root) or _path(env.get("HK_TFLM_ROOT"))
        dl = _path(downloads) or _path(env.get("HK_TFLM_DOWNLOADS"))
        if dl is None and tflm is not None:
            dl = tflm / TFLM_DOWNLOADS

        def pick(explicit: Path | str | None, name: str) -> Path | None:
            p = _path(explicit)
            if p is not None:
                return p
            return dl / name if dl is not None else None

        return cls(
            tflm=tflm,
            cmsis_nn=pick(cmsis_nn_root, "cmsis_nn"),
            cmsis=pick(cmsis_root, "cmsis"),
            flatbuffers=pick(flatbuffers_root, "flatbuffers"),
            gemmlowp=pick(gemmlowp_root, "gemmlowp"),
            ruy=pick(ruy_root, "ruy"),
        )

    @classmethod
    def from_params(cls, fw: FirmwareParams, environ: dict[str, str] | None = None) -> TflmTrees:
        """The trees named by a ``FirmwareParams`` (``firmware`` config section) or the environment."""
        return cls.locate(
            tflm_root=fw.tflm_root,
            downloads=fw.tflm_downloads,
            cmsis_nn_root=fw.cmsis_nn_root,
            cmsis_root=fw.cmsis_root,
            flatbuffers_root=fw.flatbuffers_root,
            gemmlowp_root=fw.gemmlowp_root,
            ruy_root=fw.ruy_root,
            environ=environ,
        )

    def get(self, name: str) -> Path | None:
        value: Path | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class TreeStatus:
    """One tree as ``check_trees`` found it."""

    name: str
    path: Path | None
    found: bool
    detail: str  # what was checked, or what to set when missing
    required: bool = True


def _path(p: Path | str | None) -> Path | None:
    if p is None or str(p) == "":
        return None
    return Path(os.path.expanduser(str(p))).resolve()


def needed_trees(kernels: str) -> tuple[str, ...]:
    """Which trees a kernel set needs (reference kernels need no CMSIS-NN; CMSIS headers still help)."""
    if kernels == "reference":
        return ("tflm", "flatbuffers", "gemmlowp", "ruy")
    return ("tflm", "cmsis_nn", "cmsis", "flatbuffers", "gemmlowp", "ruy")


def check_trees(trees: TflmTrees, kernels: str = "cmsis_nn") -> list[TreeStatus]:
    """Per tree: found (its marker file exists) or missing (and what to set). For ``doctor``."""
    need = needed_trees(kernels)
    out = []
    for name, (marker, what) in TREES.items():
        path = trees.get(name)
        required = name in need
        if path is None:
            out.append(TreeStatus(name, None, False, f"not set: set {what}", required))
            continue
        ok = (path / marker).is_file()
        if ok:
            detail = str(path)
            if name == "flatbuffers":
                base = path / "include/flatbuffers/base.h"
                patched = _FB_PATCH_MARK in base.read_text(errors="replace")
                detail += "" if patched else " (TFLM's flatbuffers.patch not applied; built with its define)"
        else:
            detail = f"{path / marker} not found: set {what}"
        out.append(TreeStatus(name, path, ok, detail, required))
    return out


def require_trees(trees: TflmTrees, kernels: str) -> None:
    """Raise ToolError (exit 4) naming each missing tree and what to set."""
    missing = [s for s in check_trees(trees, kernels) if s.required and not s.found]
    if missing:
        raise ToolError(
            "upstream TFLM sources missing: " + "; ".join(f"{s.name}: {s.detail}" for s in missing),
            hint=INSTALL_HINT,
        )


# ------------------------------------------------------------------------------------------------
# Sources, as TFLM's Makefile lists them


def _make_list(text: str, var: str) -> list[str]:
    """The ``$(TENSORFLOW_ROOT)...`` entries of ``VAR := \\`` in a make include file."""
    m = re.search(rf"^{re.escape(var)}\s*:=\s*\\\n((?:.*\\\n)*.*)$", text, re.MULTILINE)
    if m is None:
        return []
    return re.findall(r"\$\(TENSORFLOW_ROOT\)(\S+?\.(?:cc|c))\b", m.group(1))


def _tfl_cc_srcs(tflm: Path) -> list[Path]:
    """TFL_CC_SRCS: every .cc/.c under tensorflow/ outside lite/experimental and lite/micro, minus array.cc."""
    root = tflm / "tensorflow"
    skip = {root / "lite/experimental", root / "lite/micro"}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = sorted(n for n in dirnames if d / n not in skip)
        found += [d / f for f in filenames if f.endswith((".cc", ".c"))]
    return sorted(p for p in found if p != root / "lite/array.cc")


def _specialize(files: list[Path], directory: Path) -> list[Path]:
    """specialize_files.py: a file of the same name in ``directory`` replaces the base file."""
    if not directory.is_dir():
        return files
    names = {p.name for p in directory.iterdir()}
    return [directory / f.name if f.name in names else f for f in files]


#: Kernel file stems for builtin ops whose file is not simply the op's name in lower case.
OP_KERNEL_FILES: dict[str, tuple[str, ...]] = {
    "CONV_2D": ("conv",),
    "DEPTHWISE_CONV_2D": ("depthwise_conv",),
    "TRANSPOSE_CONV": ("transpose_conv",),
    "AVERAGE_POOL_2D": ("pooling",),
    "MAX_POOL_2D": ("pooling",),
    "L2_POOL_2D": ("l2_pool_2d",),
    "MEAN": ("reduce",),
    "SUM": ("reduce",),
    "REDUCE_MAX": ("reduce",),
    "REDUCE_MIN": ("reduce",),
    "REDUCE_PROD": ("reduce",),
    "RELU": ("activations",),
    "RELU6": ("activations",),
    "RELU_N1_TO_1": ("activations",),
    "MAXIMUM": ("maximum_minimum",),
    "MINIMUM": ("maximum_minimum",),
    "ABS": ("elementwise",),
    "SIN": ("elementwise",),
    "COS": ("elementwise",),
    "LOG": ("elementwise",),
    "SQRT": ("elementwise",),
    "RSQRT": ("elementwise",),
    "SQUARE": ("elementwise",),
    "LOGICAL_NOT": ("elementwise",),
    "LOGICAL_AND": ("logical",),
    "LOGICAL_OR": ("logical",),
    "EQUAL": ("comparisons",),
    "NOT_EQUAL": ("comparisons",),
    "GREATER": ("comparisons",),
    "GREATER_EQUAL": ("comparisons",),
    "LESS": ("comparisons",),
    "LESS_EQUAL": ("comparisons",),
    "ARG_MAX": ("arg_min_max",),
    "ARG_MIN": ("arg_min_max",),
    "BATCH_MATMUL": ("batch_matmul",),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("unidirectional_sequence_lstm", "lstm_eval"),
    "SPLIT_V": ("split_v",),
    "LOCAL_RESPONSE_NORMALIZATION": ("l2norm",),
    "L2_NORMALIZATION": ("l2norm",),
}
#: Kernel helpers every kernel subset keeps.
KERNEL_HELPERS: tuple[str, ...] = ("kernel_util", "micro_tensor_utils")


def kernel_stems(ops: Iterable[str]) -> set[str]:
    """Kernel file stems (``conv``, ``conv_common``, ...) a set of TFLite builtin op names needs."""
    stems = set(KERNEL_HELPERS)
    for op in ops:
        for base in OP_KERNEL_FILES.get(op.upper(), (op.lower(),)):
            stems.update((base, f"{base}_common"))
    return stems


def library_sources(
    trees: TflmTrees, kernels: str = "cmsis_nn", ops: Iterable[str] | None = None
) -> list[Path]:
    """Every source file of the library, in a stable order (TFLM's Makefile's selection).

    ``ops`` (TFLite builtin names, e.g. the export's op list) keeps only those ops' kernels (a smaller,
    model-specific library); None keeps every kernel, as TFLM's Makefile does.
    """
    if kernels not in KERNELS:
        raise UserError(f"unknown TFLM kernel set {kernels!r}", hint="use one of: " + ", ".join(KERNELS))
    require_trees(trees, kernels)
    tflm = trees.tflm
    assert tflm is not None
    inc = tflm / SOURCES_INC
    if not inc.is_file():
        raise ToolError(f"{inc} not found: not a tflite-micro tree TFLM's make layout", hint=INSTALL_HINT)
    text = inc.read_text()
    micro = tflm / "tensorflow/lite/micro"
    excluded = {tflm / p for p in _make_list(text, "MICROLITE_TEST_SRCS")}
    base: list[Path] = []
    for sub in ("", "arena_allocator", "memory_planner", "tflite_bridge"):
        base += sorted((micro / sub).glob("*.cc"))
    base += _tfl_cc_srcs(tflm)
    base = [
        p
        for p in base
        if p not in excluded and not p.name.endswith("benchmark.cc") and not p.name.endswith("_test.cc")
    ]
    # TARGET=cortex_m_generic's debug_log.cc (RegisterDebugLogCallback); its micro_time.cc needs a
    # device header, so the generic one stays.
    generic_log = micro / "cortex_m_generic/debug_log.cc"
    if generic_log.is_file():
        base = [generic_log if p == micro / "debug_log.cc" else p for p in base]
    kernel_list = _make_list(text, "MICROLITE_CC_KERNEL_SRCS")
    if not kernel_list:
        raise ToolError(
            f"{inc} has no MICROLITE_CC_KERNEL_SRCS list (unknown TFLM layout)", hint=INSTALL_HINT
        )
    kern = [tflm / p for p in kernel_list if not p.startswith("signal/")]  # signal: needs kissfft
    if ops is not None:
        want = kernel_stems(ops)
        stems = {p.stem for p in kern}
        missing_ops = [op for op in ops if not set(OP_KERNEL_FILES.get(op.upper(), (op.lower(),))) <= stems]
        if missing_ops:
            raise UserError(
                f"TFLM at {tflm} has no kernel for {', '.join(missing_ops)}",
                hint="check the op names (TFLite builtin names, e.g. CONV_2D) or build every kernel",
            )
        kern = [p for p in kern if p.stem in want]
    if kernels == "cmsis_nn":
        kern = _specialize(kern, micro / "kernels/cmsis_nn")
    # The signal library (MICROLITE_CC_SIGNAL_KERNEL_SRCS and the signal/micro kernels of
    # MICROLITE_CC_KERNEL_SRCS: the audio front end) is left out: it needs kissfft, and no op of a
    # Keras-exported model uses it.
    third: list[Path] = []
    if kernels == "cmsis_nn":
        assert trees.cmsis_nn is not None
        third = sorted(
            p
            for p in (trees.cmsis_nn / "Source").rglob("*.c")
            if not p.name.endswith(("_f16.c", "_f32.c")) and p.name != "arm_nntables_flt.c"
        )
    missing = [p for p in base + kern if not p.is_file()]
    if missing:
        raise ToolError(
            f"{len(missing)} source(s) named by {inc} are missing, e.g. {missing[0]}",
            hint="the tflite-micro tree is incomplete; lay it out again",
        )
    seen: set[Path] = set()
    out = []
    for p in base + kern + third:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def include_dirs(trees: TflmTrees, kernels: str = "cmsis_nn") -> list[Path]:
    """Include folders needed to compile TFLM and code that uses its headers (the engine)."""
    t = trees
    assert t.tflm is not None and t.flatbuffers is not None and t.gemmlowp is not None and t.ruy is not None
    dirs = [t.tflm, t.flatbuffers / "include", t.gemmlowp, t.ruy]
    if t.cmsis is not None and (t.cmsis / TREES["cmsis"][0]).is_file():
        dirs += [t.cmsis, t.cmsis / "CMSIS/Core/Include"]
    if kernels == "cmsis_nn":
        assert t.cmsis_nn is not None
        dirs += [t.cmsis_nn, t.cmsis_nn / "Include"]
    return dirs


def compile_flags(core: str, kernels: str, extra: Sequence[str] = ()) -> list[str]:
    """Flags (code generation + defines) shared by C and C++ objects; the engine must use the same."""
    if core not in CORE_FLAGS:
        raise UserError(f"unknown core {core!r} for the TFLM library", hint="use one of: " + ", ".join(CORES))
    flags = [*CORE_FLAGS[core], *COMMON_FLAGS, *CORE_DEFINES[core]]
    if kernels == "cmsis_nn":
        flags.append("-DCMSIS_NN")
    return flags + list(extra)


# ------------------------------------------------------------------------------------------------
# Cache key and build


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/hkdeploy/tflm`` (``~/.cache/hkdeploy/tflm`` without XDG_CACHE_HOME)."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hkdeploy" / "tflm"


def _headers(dirs: Iterable[Path]) -> list[Path]:
    out: set[Path] = set()
    for d in dirs:
        for ext in ("*.h", "*.hpp", "*.inc"):
            out.update(p for p in d.rglob(ext) if p.is_file())
    return sorted(out)


def _header_dirs(trees: TflmTrees, kernels: str) -> list[Path]:
    t = trees
    assert t.tflm is not None and t.flatbuffers is not None and t.gemmlowp is not None and t.ruy is not None
    dirs = [
        t.tflm / "tensorflow",
        t.tflm / "signal",
        t.flatbuffers / "include",
        t.gemmlowp / "fixedpoint",
        t.gemmlowp / "internal",
        t.ruy / "ruy/profiler",
    ]
    if t.cmsis is not None and (t.cmsis / "CMSIS/Core/Include").is_dir():
        dirs.append(t.cmsis / "CMSIS/Core/Include")
    if kernels == "cmsis_nn" and t.cmsis_nn is not None:
        dirs.append(t.cmsis_nn / "Include")
    return [d for d in dirs if d.is_dir()]


def content_digest(files: Iterable[Path], roots: dict[str, Path]) -> str:
    """SHA-256 over (tree-relative name, content) of ``files``: the same trees anywhere give the same key."""
    h = hashlib.sha256()
    for p in files:
        name = str(p)
        for label, root in roots.items():
            try:
                name = f"{label}:{p.relative_to(root)}"
                break
            except ValueError:
                continue
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@dataclass
class TflmLibrary:
    """A built (or cached) library and what a caller needs to compile and link against it."""

    path: Path  # libtflm.a
    include_dirs: list[Path]
    cflags: list[str]  # code generation + defines the objects were built with
    key: str
    core: str
    kernels: str
    sources: int
    cached: bool  # True: reused from the cache, nothing compiled
    seconds: float = 0.0
    manifest: dict[str, object] = field(default_factory=dict)
    #: defines for the engine built against this library (not part of the library's key):
    #: TFLM's DebugLog here is cortex_m_generic's, which takes a callback (hk_engine_tflm.cc).
    engine_defines: list[str] = field(default_factory=lambda: ["-DHK_TFLM_LOG_CALLBACK=1"])


def _tool_version(cc: str) -> str:
    try:
        r = proc.run(proc.Command([cc, "--version"], timeout=30, what=cc), check=True)
    except ToolError:
        raise ToolError(
            f"{cc} is not installed (needed to build TFLM for Cortex-M)",
            hint="apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib",
        ) from None
    return r.stdout.splitlines()[0] if r.stdout else ""


def _roots_doc(roots: dict[str, Path]) -> dict[str, str]:
    return {n: str(p) for n, p in sorted(roots.items())}


def _roots(trees: TflmTrees) -> dict[str, Path]:
    return {n: p for n in TREES if (p := trees.get(n)) is not None}


def _obj_name(src: Path) -> str:
    """A stable object name per source path (a changed source list keeps the other objects)."""
    return f"obj/{src.stem}-{hashlib.sha1(str(src).encode()).hexdigest()[:10]}.o"


def _makefile(sources: list[Path], flags: list[str], incs: list[Path], prefix: str) -> str:
    q = _mk_quote
    lines = [
        "# generated by hkdeploy.platforms.tflm_lib; do not edit",
        f"CC := {prefix}gcc",
        f"CXX := {prefix}g++",
        f"AR := {prefix}ar",
        "FLAGS := " + " ".join(q(f) for f in flags),
        "INCS := " + " ".join("-I" + q(str(d)) for d in incs),
        "CXXFLAGS := " + " ".join(CXX_FLAGS),
        "CFLAGS := " + " ".join(C_FLAGS),
        "OBJS :=",
        "",
        "all: libtflm.a",
        "",
    ]
    for src in sources:
        obj = _obj_name(src)
        tool = "$(CXX) $(CXXFLAGS)" if src.suffix == ".cc" else "$(CC) $(CFLAGS)"
        lines += [
            f"OBJS += {obj}",
            f"{obj}: {q(str(src))}",
            f"\t@mkdir -p obj && {tool} $(FLAGS) $(INCS) -MMD -MP -MF $@.d -MT $@ -c $< -o $@.tmp && mv -f $@.tmp $@",
            "",
        ]
    lines += [
        "libtflm.a: $(OBJS)",
        "\t@rm -f $@ && $(AR) rcs $@ $(OBJS)",
        "",
        "-include $(OBJS:.o=.o.d)",
        "",
    ]
    return "\n".join(lines)


def _mk_quote(s: str) -> str:
    if re.search(r"[\s#$\"'\\]", s):
        if " " in s or "$" in s or "#" in s:
            raise UserError(
                f"path or flag {s!r} has a character make cannot take", hint="use a path without spaces"
            )
        return "'" + s + "'"
    return s


def build_library(
    trees: TflmTrees,
    core: str = "cortex-m4",
    kernels: str = "cmsis_nn",
    *,
    extra_flags: Sequence[str] = (),
    ops: Sequence[str] | None = None,
    toolchain_prefix: str = "arm-none-eabi-",
    jobs: int = 2,
    cache: Path | None = None,
    log: Path | None = None,
    timeout: float = 3600.0,
) -> TflmLibrary:
    """Build (or reuse) ``libtflm.a`` for ``core`` with ``kernels``.

    Raises:
        ToolError: a tree or the toolchain is missing, or the compile failed.
        UserError: unknown core or kernel set.
    """
    if core not in CORES:
        raise UserError(f"unknown core {core!r} for the TFLM library", hint="use one of: " + ", ".join(CORES))
    sources = library_sources(trees, kernels, ops)
    incs = include_dirs(trees, kernels)
    flags = compile_flags(core, kernels, extra_flags)
    cc = toolchain_prefix + "gcc"
    version = _tool_version(cc)
    roots = _roots(trees)
    digest = content_digest([*sources, *_headers(_header_dirs(trees, kernels))], roots)
    key_doc = {
        "format": 1,
        "core": core,
        "kernels": kernels,
        "flags": flags,
        "cxxflags": list(CXX_FLAGS),
        "cflags": list(C_FLAGS),
        "toolchain": version,
        "contents": digest,
        "ops": sorted({o.upper() for o in ops}) if ops is not None else "all",
    }
    key = hashlib.sha256(json.dumps(key_doc, sort_keys=True).encode()).hexdigest()[:24]
    root = cache or cache_root()
    final = root / f"{core}-{kernels}{'' if ops is None else '-ops'}-{key}"
    lib = final / "libtflm.a"
    if lib.is_file() and (final / "manifest.json").is_file():
        cached = json.loads((final / "manifest.json").read_text())
        return TflmLibrary(lib, incs, flags, key, core, kernels, len(sources), True, 0.0, cached)
    root.mkdir(parents=True, exist_ok=True)
    # Objects live in a build folder per (core, kernels, flags, toolchain, tree places), kept between
    # calls: an interrupted or failed build resumes, a changed file recompiles only what depends on
    # it (-MMD). One build at a time per folder (flock).
    obj_key = hashlib.sha256(
        json.dumps(
            {k: key_doc[k] for k in key_doc if k not in ("contents", "ops")} | {"trees": _roots_doc(roots)},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    objdir = root / f"build-{core}-{kernels}-{obj_key}"
    objdir.mkdir(parents=True, exist_ok=True)
    with open(objdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if lib.is_file() and (final / "manifest.json").is_file():  # built meanwhile by another process
            cached = json.loads((final / "manifest.json").read_text())
            return TflmLibrary(lib, incs, flags, key, core, kernels, len(sources), True, 0.0, cached)
        fsutil.write_text(objdir / "Makefile", _makefile(sources, flags, incs, toolchain_prefix))
        (objdir / "libtflm.a").unlink(missing_ok=True)  # archived anew: exactly this call's objects
        start = time.monotonic()
        proc.run(
            proc.Command(
                ["make", "-s", f"-j{max(1, jobs)}", "-C", str(objdir), "libtflm.a"],
                timeout=timeout,
                what=f"TFLM library build ({core}, {kernels})",
                hint="run with -vv for the compiler output; check the trees with `hkdeploy doctor`",
            ),
            log=log,
        )
        seconds = time.monotonic() - start
        manifest: dict[str, object] = {
            **key_doc,
            "key": key,
            "sources": len(sources),
            "trees": _roots_doc(roots),
            "build_seconds": round(seconds, 1),
            "include_dirs": [str(d) for d in incs],
        }
        work = Path(tempfile.mkdtemp(prefix=f".new-{core}-{kernels}-", dir=root))
        try:
            shutil.copyfile(objdir / "libtflm.a", work / "libtflm.a")
            shutil.copyfile(objdir / "Makefile", work / "Makefile")
            fsutil.write_json(work / "manifest.json", manifest)
            if final.exists():  # an incomplete earlier result (no manifest): replace it
                shutil.rmtree(final)
            os.rename(work, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return TflmLibrary(lib, incs, flags, key, core, kernels, len(sources), False, seconds, manifest)


def library_for(
    params: DeployParams, core: str, kernels: str | None = None, ops: Sequence[str] | None = None
) -> TflmLibrary:
    """The library for a job: trees from ``firmware.*`` / the environment, kernels from
    ``firmware.tflm_kernels`` unless given, ``firmware.jobs`` parallel jobs, commands logged to
    ``job_dir/logs/commands.log``; ``ops``: only those builtin ops' kernels (a model-specific
    library). What a platform build (e.g. QEMU's) calls."""
    fw = params.firmware
    return build_library(
        TflmTrees.from_params(fw),
        core,
        kernels or fw.tflm_kernels,
        ops=ops,
        jobs=fw.jobs,
        log=params.job_dir / "logs" / "commands.log",
    )


@dataclass(frozen=True)
class EngineBuild:
    """What a platform build needs to compile and link the TFLM engine against a library."""

    sources: list[Path]
    include_dirs: list[Path]  # the export's headers (-I)
    system_include_dirs: list[Path]  # TFLM's trees (-isystem: not held to the firmware's -Werror)
    defines: dict[str, str | int | None]
    libs: list[Path | str]


def planned_library(trees: TflmTrees, core: str, kernels: str) -> TflmLibrary:
    """The library a build would make or reuse, described without building it (for ``--dry-run``):
    the real include folders and flags; the path names the cache folder with its key left open."""
    return TflmLibrary(
        cache_root() / f"{core}-{kernels}-<key>" / "libtflm.a",
        include_dirs(trees, kernels),
        compile_flags(core, kernels),
        "<key>",
        core,
        kernels,
        0,
        False,
    )


def engine_build(lib: TflmLibrary, export_dir: Path) -> EngineBuild:
    """The engine (firmware/engine/hk_engine_tflm.cc) against ``lib`` with an export's headers, as
    ``hkdeploy.platforms.qemu_build.build_qemu_firmware`` takes it (sources, -I, -D, libraries)."""
    from hkdeploy.paths import firmware_dir

    defines: dict[str, str | int | None] = {}
    for flag in [*lib.cflags, *lib.engine_defines]:
        if flag.startswith("-D"):
            name, eq, value = flag[2:].partition("=")
            defines[name] = value if eq else None
    return EngineBuild(
        sources=[firmware_dir() / "engine" / "hk_engine_tflm.cc"],
        include_dirs=[Path(export_dir)],
        system_include_dirs=list(lib.include_dirs),
        defines=defines,
        libs=[lib.path, "-lm"],
    )


def export_ops(export_dir: Path) -> list[str]:
    """The builtin ops of an export (``export_report.json``'s layers), for a model-specific library."""
    report = Path(export_dir) / "export_report.json"
    try:
        layers = json.loads(report.read_text())["model"]["layers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(
            f"cannot read the op list from {report}: {exc}", hint="run `hkdeploy export` first"
        ) from None
    return sorted({str(layer["op"]) for layer in layers})
