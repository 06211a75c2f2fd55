"""Quantization-aware fine-tuning, Keras-3-native (tfmot does not accept Keras 3 models).

The float model is rebuilt the way the TFLite converter will see it:
- BatchNormalization that follows a Conv1D/Conv2D/DepthwiseConv1D/DepthwiseConv2D/Dense is folded into
  that layer's kernel and bias (exactly the converter's fold), and disappears;
- kernels are fake-quantized per output channel, symmetric int8 ([-127, 127], the converter's weight
  scheme), with a straight-through gradient;
- the output of every fused group (conv/dense [+ folded BN] [+ ReLU/ReLU6]) and of other layers that
  requantize gets an ``ActivationFakeQuant`` layer: ``keras.quantizers.fake_quant_with_min_max_vars``
  with trainable min/max, initialised from calibration statistics (the PTQ ranges). It lowers to TF's
  FakeQuant op, whose ranges the converter writes into the int8 model.
Layers whose int8 kernels keep their input's scale (pooling, reshape, dropout) are left alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
from keras import ops

from hkdeploy.console import info as say

if TYPE_CHECKING:
    from hkdeploy.config.params import DeployParams
    from hkdeploy.datasets import DataSplit

_PKG = "hkdeploy_qat"


def _ste_per_channel(kernel: Any, channel_axes: tuple[int, ...]) -> Any:
    """Symmetric int8 fake quantization of a kernel per output channel, straight-through gradient."""
    reduce_axes = tuple(i for i in range(len(kernel.shape)) if i not in channel_axes)
    absmax = ops.max(ops.abs(kernel), axis=reduce_axes, keepdims=True)
    scale = ops.maximum(absmax, 1e-12) / 127.0
    q = ops.clip(ops.round(kernel / scale), -127.0, 127.0) * scale
    return kernel + ops.stop_gradient(q - kernel)


@keras.saving.register_keras_serializable(package=_PKG)
class QConv1D(keras.layers.Conv1D):
    """Conv1D whose kernel is fake-quantized per output channel."""

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        return super().convolution_op(inputs, _ste_per_channel(kernel, (len(kernel.shape) - 1,)))


@keras.saving.register_keras_serializable(package=_PKG)
class QConv2D(keras.layers.Conv2D):
    """Conv2D whose kernel is fake-quantized per output channel."""

    def convolution_op(self, inputs: Any, kernel: Any) -> Any:
        return super().convolution_op(inputs, _ste_per_channel(kernel, (len(kernel.shape) - 1,)))


@keras.saving.register_keras_serializable(package=_PKG)
class QDense(keras.layers.Dense):
    """Dense whose kernel is fake-quantized per output unit."""

    @property
    def kernel(self) -> Any:
        return _ste_per_channel(super().kernel, (1,))


def _depthwise_call(layer: Any, inputs: Any) -> Any:
    rank = len(layer.kernel.shape) - 2  # (k..., in, multiplier)
    kernel = _ste_per_channel(layer.kernel, (rank, rank + 1))
    outputs = ops.depthwise_conv(
        inputs,
        kernel,
        strides=layer.strides,
        padding=layer.padding,
        dilation_rate=layer.dilation_rate,
        data_format=layer.data_format,
    )
    if layer.use_bias:
        shape = (1,) * (rank + 1) + (-1,) if layer.data_format == "channels_last" else (1, -1) + (1,) * rank
        outputs = ops.add(outputs, ops.reshape(layer.bias, shape))
    return layer.activation(outputs) if layer.activation is not None else outputs


@keras.saving.register_keras_serializable(package=_PKG)
class QDepthwiseConv1D(keras.layers.DepthwiseConv1D):
    """DepthwiseConv1D whose kernel is fake-quantized per output channel."""

    def call(self, inputs: Any) -> Any:
        return _depthwise_call(self, inputs)


@keras.saving.register_keras_serializable(package=_PKG)
class QDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """DepthwiseConv2D whose kernel is fake-quantized per output channel."""

    def call(self, inputs: Any) -> Any:
        return _depthwise_call(self, inputs)


def _lsq_fake_quant(x: Any, lo: Any, hi: Any) -> Any:
    """Asymmetric 8-bit fake quantization whose step size learns from the rounding error (LSQ).

    Same forward values as FakeQuant over [lo, hi]; unlike FakeQuant, the range also receives a
    gradient from unclipped values (round(x/s) - x/s), so it can shrink to regain resolution.
    """
    s = ops.maximum((hi - lo) / 255.0, 1e-8)
    z = ops.stop_gradient(ops.round(-lo / s))
    v = x / s + z
    v = v + ops.stop_gradient(ops.round(v) - v)
    return (ops.clip(v, 0.0, 255.0) - z) * s


@keras.saving.register_keras_serializable(package=_PKG)
class ActivationFakeQuant(keras.layers.Layer):
    """Per-tensor int8 fake quantization of activations with a trainable range.

    The range is ``[init_min * |lo|, init_max * |hi|]`` with trainable multipliers ``lo``/``hi``
    starting at 1: Adam moves a variable by about the learning rate per step, so multipliers give
    every tensor the same *relative* range step whether its calibrated range is 0.1 or 100.
    Training uses an LSQ-style quantizer (``_lsq_fake_quant``); inference uses TF's FakeQuant.
    """

    def __init__(self, init_min: float = -6.0, init_max: float = 6.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.init_min = float(init_min)
        self.init_max = float(init_max)

    def build(self, input_shape: Any) -> None:
        self.lo = self.add_weight(name="lo", shape=(), initializer="ones", trainable=True)
        self.hi = self.add_weight(name="hi", shape=(), initializer="ones", trainable=True)

    def range(self) -> tuple[Any, Any]:
        """The current (min, max) tensors."""
        return self.init_min * ops.abs(self.lo), self.init_max * ops.abs(self.hi)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        lo, hi = self.range()
        if training:
            return _lsq_fake_quant(inputs, lo, hi)
        # Inference (and the graph the converter traces): TF's FakeQuant op with the learned range.
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, lo, hi, num_bits=8)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "init_min": self.init_min, "init_max": self.init_max}


_QUANT_CLASSES: dict[type, Any] = {
    keras.layers.Conv1D: QConv1D,
    keras.layers.Conv2D: QConv2D,
    keras.layers.Dense: QDense,
    keras.layers.DepthwiseConv1D: QDepthwiseConv1D,
    keras.layers.DepthwiseConv2D: QDepthwiseConv2D,
}
# Layers whose int8 kernels keep the input's quantization: no range of their own.
_PASS_THROUGH = (
    keras.layers.InputLayer,
    keras.layers.MaxPooling1D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling1D,
    keras.layers.AveragePooling2D,
    keras.layers.Reshape,
    keras.layers.Flatten,
    keras.layers.Dropout,
    keras.layers.ZeroPadding1D,
    keras.layers.ZeroPadding2D,
)


def _is_fusable_activation(layer: Any) -> bool:
    if isinstance(layer, keras.layers.ReLU):
        return layer.negative_slope == 0 and layer.threshold == 0
    if isinstance(layer, keras.layers.Activation):
        return getattr(layer.activation, "__name__", "") in ("relu", "relu6", "linear")
    return False


def _is_softmax(layer: Any) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    return getattr(getattr(layer, "activation", None), "__name__", "") == "softmax"


def _graph(model: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Layers by name and, for each layer, the names of the layers consuming its output."""
    layers = {layer.name: layer for layer in model.layers}
    consumers: dict[str, list[str]] = {name: [] for name in layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                if producer.name in consumers:
                    consumers[producer.name].append(layer.name)
    return layers, consumers


def _fold(layer: Any, bn: Any) -> list[np.ndarray]:
    """Kernel and bias of ``layer`` with the following BatchNormalization ``bn`` folded in."""
    weights = layer.get_weights()
    kernel = weights[0]
    bias = weights[1] if layer.use_bias else None
    gamma = bn.gamma.numpy() if bn.scale else np.ones(bn.moving_mean.shape)
    beta = bn.beta.numpy() if bn.center else np.zeros(bn.moving_mean.shape)
    factor = gamma / np.sqrt(bn.moving_variance.numpy() + bn.epsilon)
    if _is_depthwise(layer):
        kernel = kernel * factor.reshape(kernel.shape[-2], kernel.shape[-1])
    else:
        kernel = kernel * factor
    if bias is None:
        bias = np.zeros_like(factor)
    bias = (bias - bn.moving_mean.numpy()) * factor + beta
    return [kernel.astype(np.float32), bias.astype(np.float32)]


def _is_depthwise(layer: Any) -> bool:
    return isinstance(layer, keras.layers.DepthwiseConv1D | keras.layers.DepthwiseConv2D)


def build_qat_model(model: Any, calibration: np.ndarray) -> tuple[Any, dict[str, tuple[float, float]]]:
    """The fake-quantized, BN-folded twin of ``model`` (same function in float, up to quantization)."""
    layers, consumers = _graph(model)
    folds: dict[str, str] = {}  # conv/dense name -> its BN name
    for name, layer in layers.items():
        if isinstance(layer, keras.layers.BatchNormalization):
            producers = [p for p, cs in consumers.items() if name in cs]
            producer = producers[0] if len(producers) == 1 else ""
            if (
                producer
                and type(layers[producer]) in _QUANT_CLASSES
                and len(consumers[producer]) == 1
                and getattr(layers[producer].activation, "__name__", "linear") == "linear"
            ):
                folds[producer] = name
    folded_bns = set(folds.values())

    targets: list[str] = []
    for name, layer in layers.items():
        if isinstance(layer, _PASS_THROUGH) or _is_softmax(layer):
            continue
        nxt = consumers[name]
        if len(nxt) == 1 and (nxt[0] in folded_bns or _is_fusable_activation(layers[nxt[0]])):
            continue  # the fused group's output is quantized further on
        targets.append(name)

    probe = keras.Model(model.inputs, [layers[t].output for t in targets])
    outs = probe.predict(calibration, batch_size=64, verbose=0)
    outs = outs if isinstance(outs, list) else [outs]
    input_range = (min(0.0, float(np.min(calibration))), max(0.0, float(np.max(calibration))) or 1e-3)
    ranges = {
        t: (min(0.0, float(np.min(o))), max(0.0, float(np.max(o))) or 1e-3)
        for t, o in zip(targets, outs, strict=True)
    }

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in folded_bns:
            return keras.layers.Identity(name=layer.name)
        qcls = _QUANT_CLASSES.get(type(layer))
        if qcls is not None:
            if layer.name in folds:
                config["use_bias"] = True
            return qcls.from_config(config)
        return layer.__class__.from_config(config)

    input_fq: dict[int, Any] = {}

    def quantized_input(t: Any) -> Any:
        # The model input gets a range of its own too (the converter takes the int8 input's scale
        # from it), so QAT can learn to clip rare outliers that blow up the calibrated input range.
        history = getattr(t, "_keras_history", None)
        if history is None or not isinstance(history.operation, keras.layers.InputLayer):
            return t
        if id(t) not in input_fq:
            input_fq[id(t)] = ActivationFakeQuant(*input_range, name=f"{history.operation.name}_fq")(t)
        return input_fq[id(t)]

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("mask", 0) is None:
            kwargs.pop("mask")  # Identity (a folded BN) takes no mask argument
        args = tuple(quantized_input(a) for a in args)
        out = layer(*args, **kwargs)
        if layer.name in ranges:
            lo, hi = ranges[layer.name]
            out = ActivationFakeQuant(lo, hi, name=f"{layer.name}_fq")(out)
        return out

    qat = keras.models.clone_model(model, clone_function=clone, call_function=call)
    for new in qat.layers:
        old = layers.get(new.name)
        if old is None or not old.weights or old.name in folded_bns:
            continue
        new.set_weights(_fold(old, layers[folds[old.name]]) if old.name in folds else old.get_weights())
    return qat, ranges


def run_qat(
    model: Any, params: DeployParams, calibration: DataSplit, test: DataSplit, work: Path
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune ``model`` with fake quantization; returns the QAT model and the PTQ baseline figures."""
    from hkdeploy.datasets import load_split
    from hkdeploy.export.check import quantize_inputs
    from hkdeploy.export.convert import ConvertSpec, convert_keras
    from hkdeploy.export.inspect import inspect_model
    from hkdeploy.metrics import classification
    from hkdeploy.tflm import TflmRunner, probe_arena

    q = params.quantization
    keras.utils.set_random_seed(params.seed)
    # PTQ baseline: the same conversion without QAT, on TFLM. Converted here, in the export's one
    # TensorFlow process (no second TensorFlow start-up).
    spec = ConvertSpec(
        model_path="",  # converted from memory
        out_path=str(work / "ptq.tflite"),
        format=q.format,
        io_type=q.io_type,
        fallback=q.fallback,
        conversion=q.conversion,
        calibration_path=None,
        use_logits=True,
    )
    ptq = convert_keras(model, spec, calibration.x)
    (work / "ptq.tflite").write_bytes(ptq)
    info = inspect_model(ptq)
    arena = probe_arena(work / "ptq.tflite")
    ptq_out = TflmRunner(ptq, arena.board).run_many(quantize_inputs(test.x, info))
    ptq_acc = classification(test.y, ptq_out.argmax(axis=1), params.num_classes).accuracy
    float_pred = np.asarray(model.predict(test.x, batch_size=64, verbose=0)).argmax(axis=1)
    float_acc = classification(test.y, float_pred, params.num_classes).accuracy

    train = load_split(params, "train", q.qat_train_size)
    # Hold out a validation slice of the *training* split: the best epoch is chosen on it, never on
    # the test frames. Epoch 0 (the PTQ-equivalent start) is a candidate, so QAT never ends worse.
    rng = np.random.default_rng(params.seed)
    order = rng.permutation(len(train))
    n_val = max(1, len(train) // 5)
    val_idx, fit_idx = order[:n_val], order[n_val:]
    qat, ranges = build_qat_model(model, calibration.x)
    softmax_out = _is_softmax(model.layers[-1])
    steps = q.qat_epochs * max(1, len(fit_idx) // q.qat_batch_size)
    qat.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(q.qat_lr_rate, steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not softmax_out),
        metrics=["accuracy"],
    )

    def val_acc() -> float:
        return float(qat.evaluate(train.x[val_idx], train.y[val_idx], verbose=0)[1])

    best_acc, best_epoch, best_weights = val_acc(), 0, qat.get_weights()
    before = float(qat.evaluate(test.x, test.y, verbose=0)[1])
    for epoch in range(1, q.qat_epochs + 1):
        qat.fit(
            train.x[fit_idx], train.y[fit_idx], epochs=1, batch_size=q.qat_batch_size, verbose=0, shuffle=True
        )
        acc = val_acc()
        if acc > best_acc:
            best_acc, best_epoch, best_weights = acc, epoch, qat.get_weights()
    qat.set_weights(best_weights)
    after = float(qat.evaluate(test.x, test.y, verbose=0)[1])
    say(f"  QAT: fake-quant accuracy {before:.4f} -> {after:.4f} (best epoch {best_epoch} of {q.qat_epochs})")
    report = {
        "float_acc": float_acc,
        "ptq_int8_acc": ptq_acc,
        "qat_fake_quant_acc_before": before,
        "qat_fake_quant_acc_after": after,
        "epochs": q.qat_epochs,
        "best_epoch": best_epoch,
        "validation_acc": best_acc,
        "train_frames": len(fit_idx),
        "validation_frames": len(val_idx),
        "quantized_tensors": len(ranges),
        "folded_batchnorms": sum(1 for layer in qat.layers if isinstance(layer, keras.layers.Identity)),
    }
    return qat, report


def trained_ranges(model: Any) -> dict[str, tuple[float, float]]:
    """The (min, max) of every ActivationFakeQuant layer, by the name of the layer it follows."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, ActivationFakeQuant):
            lo, hi = layer.range()
            out[layer.name.removesuffix("_fq")] = (
                float(ops.convert_to_numpy(lo)),
                float(ops.convert_to_numpy(hi)),
            )
    return out
