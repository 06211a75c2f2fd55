"""Small models of each neuralspot-edge architecture family through hkdeploy's conversion path:
rewrites -> int8 convert (batch 1, subprocess) -> ops TFLM lacks -> TFLM vs TFLite reference kernels.

    PYTHONPATH=. python bench/zoo_export.py [family ...]

Prints one line per family: ops, rewrites, float ops, TFLM == TFLite, or the converter's own words.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np

T = 128


def families() -> dict[str, Any]:
    import keras
    import neuralspot_edge.models as m

    def inp() -> Any:
        return keras.Input((T, 1))

    def functional(layer: Any, params: Any, num_classes: int) -> Any:
        x = inp()
        return keras.Model(x, layer(x, params, num_classes))

    def metaformer() -> Any:
        # neuralspot-edge's metaformer_layer has no return statement: assembled from its blocks.
        from neuralspot_edge.models import metaformer as mf

        x = keras.Input((1, T, 1))
        y = mf.patch_embedding(embed_dim=16, patch_shape=(1, 4), stride_shape=(1, 4))(x)
        y = mf.metaformer_block(
            token_mixer=mf.conv_token_mixer(embed_dim=16, kernel_size=(1, 3)),
            channel_mixer=mf.mlp_channel_mixer(embed_dim=16, ratio=2, activation="gelu"),
            name="B1.L1",
        )(y)
        y = keras.layers.GlobalAveragePooling2D()(y)
        return keras.Model(x, keras.layers.Dense(4)(y))

    def conformer() -> Any:
        # neuralspot-edge's conformer blocks call x.shape.rank (Keras 2 API; Keras 3 shapes are
        # tuples), so a small Conformer of the same structure is built from Keras layers:
        # subsampling conv, half-step FF, MHSA, conv module (GLU, depthwise conv, BN, swish), FF, LN.
        d = 16
        x = inp()
        y = keras.layers.Conv1D(d, 3, strides=2, padding="same", activation="relu")(x)

        def ff(z: Any, tag: str) -> Any:
            h = keras.layers.LayerNormalization(name=f"{tag}.ln")(z)
            h = keras.layers.Dense(2 * d, activation="swish")(h)
            h = keras.layers.Dense(d)(h)
            return keras.layers.Add()([z, keras.layers.Rescaling(0.5)(h)])

        y = ff(y, "ff1")
        h = keras.layers.LayerNormalization(name="mhsa.ln")(y)
        h = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8, name="mhsa")(h, h)
        y = keras.layers.Add()([y, h])
        h = keras.layers.LayerNormalization(name="conv.ln")(y)
        gate = keras.layers.Conv1D(d, 1, activation="sigmoid")(h)
        h = keras.layers.Multiply()([keras.layers.Conv1D(d, 1)(h), gate])  # GLU
        h = keras.layers.DepthwiseConv1D(3, padding="same")(h)
        h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation("swish")(h)
        h = keras.layers.Conv1D(d, 1)(h)
        y = keras.layers.Add()([y, h])
        y = ff(y, "ff2")
        y = keras.layers.LayerNormalization(name="out.ln")(y)
        y = keras.layers.GlobalAveragePooling1D()(y)
        return keras.Model(x, keras.layers.Dense(4)(y))

    def tsmixer() -> Any:
        # tsmixer_layer iterates range(params.blocks) (a list): its ts_block is used directly (norm
        # "layer": its "batch" norm passes a list axis, which Keras 3 BatchNormalization refuses).
        from neuralspot_edge.models.tsmixer import TsMixerBlockParams, ts_block

        x = inp()
        y = ts_block(TsMixerBlockParams(norm="layer", activation="relu", ff_dim=16, dropout=0.0), name="TS1")(
            x
        )
        y = keras.ops.transpose(y, axes=[0, 2, 1])
        y = keras.layers.Dense(4)(y)
        y = keras.ops.transpose(y, axes=[0, 2, 1])
        return keras.Model(x, keras.layers.Dense(4)(keras.layers.Flatten()(y)))

    return {
        "tcn": lambda: m.TcnModel.model_from_params(
            inp(),
            m.TcnParams(
                input_kernel=(1, 3),
                input_norm="batch",
                blocks=[
                    m.TcnBlockParams(
                        filters=8, kernel=(1, 3), dilation=(1, 2), ex_ratio=1, se_ratio=0, norm="batch"
                    )
                ],
                output_kernel=(1, 3),
                include_top=True,
                use_logits=True,
                block_type="mb",
            ),
            num_classes=4,
        ),
        "efficientnetv2": lambda: m.EfficientNetV2Model.model_from_params(
            inp(),
            m.EfficientNetParams(
                input_filters=8,
                input_kernel_size=(1, 5),
                input_strides=(1, 2),
                blocks=[
                    m.efficientnet.MBConvParams(
                        filters=16, depth=1, kernel_size=(1, 5), strides=(1, 2), ex_ratio=1, se_ratio=2
                    )
                ],
                output_filters=0,
                include_top=True,
                use_logits=True,
                norm="batch",
            ),
            num_classes=4,
        ),
        "mobileone": lambda: m.MobileOneModel.model_from_params(
            keras.Input((1, T, 1)),
            m.MobileOneParams(
                input_filters=8,
                input_kernel_size=(1, 5),
                input_strides=(1, 2),
                input_padding=(0, 2),
                blocks=[
                    m.MobileOneBlockParams(
                        filters=16,
                        depth=1,
                        kernel_size=(1, 5),
                        strides=(1, 2),
                        padding=(0, 2),
                        se_ratio=2,
                        se_depth=1,
                    )
                ],
                include_top=True,
            ),
            num_classes=4,
        ),
        "resnet": lambda: m.ResNetModel.model_from_params(
            inp(),
            m.ResNetParams(
                input_filters=8,
                input_kernel_size=(1, 5),
                input_strides=(1, 2),
                blocks=[m.ResNetBlockParams(filters=16, depth=1, kernel_size=(1, 3), strides=(1, 2))],
                include_top=True,
            ),
            num_classes=4,
        ),
        "conformer": conformer,
        "metaformer": metaformer,
        "unet": lambda: m.UNetModel.model_from_params(
            inp(),
            m.UNetParams(
                blocks=[
                    m.UNetBlockParams(
                        filters=8, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True
                    ),
                    m.UNetBlockParams(
                        filters=16, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True
                    ),
                ],
                output_kernel_size=(1, 3),
                include_top=True,
                use_logits=True,
            ),
            num_classes=4,
        ),
        # UNextModel/TsMixerModel.model_from_params pass x= to layers that take inputs=: call the layers.
        "unext": lambda: functional(
            m.unext_layer,
            m.UNextParams(
                blocks=[
                    m.UNextBlockParams(
                        filters=8, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True
                    ),
                    m.UNextBlockParams(
                        filters=16, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True
                    ),
                ],
                output_kernel_size=(1, 3),
                include_top=True,
                use_logits=True,
            ),
            num_classes=4,
        ),
        "tsmixer": tsmixer,
    }


def run_one(name: str, build: Any, work: Path) -> str:
    import keras

    from hkdeploy.errors import HkDeployError
    from hkdeploy.export import integrity, rewrites
    from hkdeploy.export.check import quantize_inputs, run_tflite
    from hkdeploy.export.convert import ConvertSpec, convert_in_subprocess
    from hkdeploy.export.inspect import inspect_model
    from hkdeploy.tflm import TflmRunner, probe_arena

    keras.utils.set_random_seed(0)  # weights as in tests/export/test_zoo.py
    try:
        model = build()
    except Exception as exc:
        return f"{name}: cannot build ({type(exc).__name__}: {str(exc).splitlines()[0][:150]})"
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    try:
        rewrites.check_single_io(model)
        model, recs = rewrites.prepare(model, x)
        path = work / f"{name}.keras"
        model.save(path)
        np.savez(work / "calib.npz", x=x)
        spec = ConvertSpec(
            str(path),
            str(work / f"{name}.tflite"),
            "int8",
            "int8",
            True,
            "keras",
            str(work / "calib.npz"),
            True,
        )
        tfl = convert_in_subprocess(spec, work, [])
        info = inspect_model(tfl)
        kinds = {layer.name: type(layer).__name__ for layer in model._flatten_layers(include_self=False)}
        rewrites.check_tflm_ops_named(info, model)
        fops = integrity.float_ops(tfl, "int8", kinds)
        (work / "m.tflite").write_bytes(tfl)
        arena = probe_arena(work / "m.tflite")
        raw = quantize_inputs(x[:32], info)
        a = run_tflite(tfl, raw).reshape(32, -1)
        b = TflmRunner(tfl, arena.board).run_many(raw).reshape(32, -1)
        exact = float(np.mean(np.all(a == b, axis=1)))
        lsb = int(np.max(np.abs(a.astype(int) - b.astype(int))))
    except HkDeployError as exc:
        return f"{name}: {exc.message[:400]}"
    rw = ",".join(f"{r.name}({r.max_abs_diff:.2g})" for r in recs) or "-"
    fl = integrity.float_ops_summary(fops) if fops else "no float ops"
    return (
        f"{name}: TFLM==TFLite on {exact:.0%} of frames (max {lsb} LSB); rewrites {rw}; {fl}; "
        f"ops {','.join(sorted(info.ops))}"
    )


def main(argv: list[str]) -> int:
    fams = families()
    names = argv or list(fams)
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.monotonic()
            line = run_one(name, fams[name], Path(tmp))
            print(f"{line}  [{time.monotonic() - start:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
