"""The table of ops TFLM can run agrees with the tflite-micro runtime we verify models on."""

from __future__ import annotations

import re
from pathlib import Path

import tflite

from hkdeploy.export.tflm_ops import TFLM_RESOLVER_METHODS


def _runtime_builtin_kernels() -> set[str]:
    """Builtin ops whose kernel the runtime's library registers (``tflite::micro::Register_<OP>()``)."""
    from tflite_micro.python.tflite_micro import runtime

    lib = next(Path(runtime.__file__).parent.glob("_runtime*.so"))
    # Itanium mangling of tflite::micro::Register_<OP>(): _ZN6tflite5micro<len>Register_<OP>Ev
    found = {m.decode() for m in re.findall(rb"_ZN6tflite5micro\d+Register_([A-Z0-9_]+)Ev", lib.read_bytes())}
    builtins = {name for name in vars(tflite.BuiltinOperator) if name.isupper()}
    return found & builtins  # the rest are custom ops (ETHOSU, DETECTION_POSTPROCESS, signal ops, ...)


def test_op_table_equals_the_runtime_kernels() -> None:
    kernels = _runtime_builtin_kernels()
    assert len(kernels) > 90, "could not read the runtime's kernel list"
    assert set(TFLM_RESOLVER_METHODS) == kernels, {
        "in the table, no kernel in the runtime": sorted(set(TFLM_RESOLVER_METHODS) - kernels),
        "kernel in the runtime, missing from the table": sorted(kernels - set(TFLM_RESOLVER_METHODS)),
    }


def test_resolver_methods_follow_tflm_naming() -> None:
    # MicroMutableOpResolver names its methods Add + the op in CamelCase (2D/ND/V2 kept as written).
    for op, method in TFLM_RESOLVER_METHODS.items():
        assert method.startswith("Add") and re.fullmatch(r"Add[A-Z][A-Za-z0-9]*", method), (op, method)
        words = op.replace("_", "").lower()
        assert method[3:].lower() == words, (op, method)
