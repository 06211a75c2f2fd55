"""Convert a Keras model to TFLite in a subprocess (a converter crash becomes an error message).

The parent writes the model (``.keras``) and the calibration frames (``.npz``) to a work folder and
runs ``python -m hkdeploy.export.convert <spec.json>``; the child converts with a fixed batch of 1
and writes the flatbuffer. The int8 conversion of Keras GRU/LSTM can kill the converter process
(exit 139): that case is reported with the model's recurrent layers named.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hkdeploy.children import die_with_parent_fn
from hkdeploy.errors import ToolError, UserError

CONVERT_TIMEOUT_S = 900


@dataclass(frozen=True)
class ConvertSpec:
    """What the converter child does."""

    model_path: str
    out_path: str
    format: str  # int8 | int16x8 | float16 | float32
    io_type: str  # int8 | uint8 | float32
    fallback: bool
    conversion: str  # keras | saved_model | concrete
    calibration_path: str | None
    use_logits: bool
    # True: a copy hkdeploy wrote itself (QAT model, ...), reloaded outside Keras' safe mode.
    # False: the user's model_file, loaded exactly as the parent loads it.
    staged: bool = True


class Conversion:
    """A converter child process that runs while the parent does other work (see ``start_conversion``)."""

    def __init__(self, spec: ConvertSpec, work_dir: Path) -> None:
        self.spec = spec
        spec_path = work_dir / "convert_spec.json"
        spec_path.write_text(json.dumps(asdict(spec)))
        self._stderr_path = work_dir / "convert_stderr.txt"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        # stderr to a file, not a pipe: the converter can log a lot and the parent is busy meanwhile.
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "hkdeploy.export.convert", str(spec_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
                preexec_fn=die_with_parent_fn(),  # a SIGKILLed parent takes the converter with it
            )
        self._started = time.monotonic()

    def cancel(self) -> None:
        """Stop the child (when the parent fails first); waits for it, bounded."""
        if self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a killed child always exits
                pass

    def result(self, layer_types: list[str]) -> bytes:
        """Wait for the child and return the .tflite bytes.

        Raises:
            UserError: the converter rejected or crashed on the model (the message names why).
            ToolError: the converter did not finish in time.
        """
        remaining = max(1.0, CONVERT_TIMEOUT_S - (time.monotonic() - self._started))
        try:
            returncode = self._proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired as exc:
            self.cancel()
            raise ToolError(
                f"the TFLite converter did not finish within {CONVERT_TIMEOUT_S} s",
                hint="a very large model? try a smaller calibration_size",
            ) from exc
        if returncode != 0:
            stderr = self._stderr_path.read_text(errors="replace")
            raise _conversion_error(self.spec, returncode, stderr, layer_types)
        return Path(self.spec.out_path).read_bytes()


def start_conversion(spec: ConvertSpec, work_dir: Path) -> Conversion:
    """Start the converter child for ``spec``; call ``.result(layer_types)`` to wait for it."""
    return Conversion(spec, work_dir)


def convert_in_subprocess(spec: ConvertSpec, work_dir: Path, layer_types: list[str]) -> bytes:
    """Run the converter child and return the .tflite bytes (``start_conversion`` + ``result``)."""
    return start_conversion(spec, work_dir).result(layer_types)


def _conversion_error(spec: ConvertSpec, returncode: int, stderr: str, layer_types: list[str]) -> UserError:
    if returncode < 0 or returncode >= 128:
        sig = -returncode if returncode < 0 else returncode - 128
        recurrent = sorted({t for t in layer_types if t in ("GRU", "LSTM", "SimpleRNN", "Bidirectional")})
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return UserError(
            f"the TFLite converter crashed ({name}) converting to {spec.format}"
            + (f"; the model has recurrent layers ({', '.join(recurrent)})" if recurrent else ""),
            hint="int8 conversion of Keras GRU/LSTM crashes the converter: replace them (e.g. with "
            "dilated Conv1D / TCN blocks) or use quantization.format float32",
        )
    tail = [ln for ln in stderr.splitlines() if ln.strip()][-3:]
    detail = " | ".join(tail)[-600:]
    return UserError(
        f"the TFLite converter rejected the model ({spec.format}): {detail}",
        hint="layers TFLite builtins cannot express need replacing; quantization.fallback allows float "
        "kernels where int8 has none",
    )


def _convert(spec: ConvertSpec) -> bytes:  # runs in the child
    import keras

    import hkdeploy.export.qat  # noqa: F401  (registers the QAT layers for loading)
    from hkdeploy.export.load import _custom_objects, load_keras_model

    if spec.staged:
        # A copy hkdeploy itself wrote from the model the user configured (e.g. the QAT model);
        # a SavedModel input is wrapped in a TFSMLayer, which Keras' safe mode refuses to reload.
        _custom_objects()  # neuralspot-edge layers
        model = keras.models.load_model(spec.model_path, compile=False, safe_mode=False)
    else:
        model = load_keras_model(Path(spec.model_path))
    return convert_keras(model, spec)


def convert_keras(model: Any, spec: ConvertSpec, calibration: Any = None) -> bytes:
    """Convert a loaded Keras model as ``spec`` says (batch fixed to 1); ``spec.model_path`` is unused.

    ``calibration``: the calibration frames, when not read from ``spec.calibration_path``.

    Runs in a TensorFlow process: the export's worker, or the converter child above.
    """
    import numpy as np
    import tensorflow as tf

    from hkdeploy.export.load import deployable

    fixed = deployable(model, spec.use_logits)

    if spec.conversion == "saved_model":
        sm_dir = str(Path(spec.out_path).parent / "saved_model")
        fixed.export(sm_dir, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(sm_dir)
    elif spec.conversion == "concrete":
        shape = [1, *fixed.inputs[0].shape[1:]]
        fn = tf.function(
            lambda x: fixed(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)]
        )
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fixed)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(fixed)
    # TFLM runs TFLite builtins only: never SELECT_TF_OPS.
    builtins = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if spec.format in ("int8", "int16x8"):
        if calibration is None and spec.calibration_path:
            with np.load(spec.calibration_path) as data:
                calibration = data["x"]
        frames = np.asarray(calibration, dtype=np.float32) if calibration is not None else None
        if frames is None or not len(frames):
            raise SystemExit("calibration frames are required for integer quantization")

        def representative() -> Any:
            for frame in frames:
                yield [frame[None, ...]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        if spec.format == "int8":
            ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            io = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[spec.io_type]
        else:
            ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
            io = tf.float32 if spec.io_type == "float32" else tf.int16
        converter.target_spec.supported_ops = ops + (builtins if spec.fallback else [])
        converter.inference_input_type = io
        converter.inference_output_type = io
    elif spec.format == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        converter.target_spec.supported_ops = builtins
    else:
        converter.target_spec.supported_ops = builtins
    return bytes(converter.convert())


def main(argv: list[str]) -> int:  # pragma: no cover - exercised through convert_in_subprocess
    spec = ConvertSpec(**json.loads(Path(argv[0]).read_text()))
    model = _convert(spec)
    tmp = Path(spec.out_path + ".tmp")
    tmp.write_bytes(model)
    os.replace(tmp, spec.out_path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
