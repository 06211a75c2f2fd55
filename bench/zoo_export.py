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
import numpy as np  # noqa: E402

T = 128


def families() -> dict[str, Any]:
    import keras
    import neuralspot_edge.models as m

    def inp() -> Any:
        return keras.Input((T, 1))

    return {
        "tcn": lambda: m.TcnModel.model_from_params(
            inp(),
            m.TcnParams(
                input_kernel=(1, 3),
                input_norm="batch",
                blocks=[m.TcnBlockParams(filters=8, kernel=(1, 3), dilation=(1, 2), ex_ratio=1, se_ratio=0, norm="batch")],
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
                blocks=[m.efficientnet.MBConvParams(filters=16, depth=1, kernel_size=(1, 5), strides=(1, 2), ex_ratio=1, se_ratio=2)],
                output_filters=0,
                include_top=True,
                use_logits=True,
                norm="batch",
            ),
            num_classes=4,
        ),
        "mobileone": lambda: m.MobileOneModel.model_from_params(
            inp(),
            m.MobileOneParams(
                input_filters=8,
                input_kernel_size=(1, 5),
                input_strides=(1, 2),
                input_padding=(0, 2),
                blocks=[
                    m.MobileOneBlockParams(
                        filters=16, depth=1, kernel_size=(1, 5), strides=(1, 2), padding=(0, 2), se_ratio=2, se_depth=1
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
        "conformer": lambda: m.ConformerModel.model_from_params(
            inp(),
            m.ConformerParams(
                subsamples=[m.conformer.SubsampleBlockParams(depth=16, kernel_size=3, strides=2)],
                blocks=[m.ConformerBlockParams(depth=16, num_heads=2, kernel_size=3, dropout=0.0)],
                include_top=True,
            ),
            num_classes=4,
        ),
        "metaformer": lambda: m.MetaFormerModel.model_from_params(
            inp(),
            m.MetaFormerParams(
                blocks=[
                    m.MetaFormerBlockParams(
                        layers=1,
                        patch_embed={"embed_dim": 16, "patch_shape": (1, 4), "stride_shape": (1, 4)},
                        token_mixer={"name": "conv", "args": {"embed_dim": 16, "kernel_size": (1, 3)}},
                        channel_mixer={"name": "mlp", "args": {"embed_dim": 16, "ratio": 2, "activation": "gelu"}},
                    )
                ],
                include_top=True,
            ),
            num_classes=4,
        ),
        "unet": lambda: m.UNetModel.model_from_params(
            inp(),
            m.UNetParams(
                blocks=[
                    m.UNetBlockParams(filters=8, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True),
                    m.UNetBlockParams(filters=16, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True),
                ],
                output_kernel_size=(1, 3),
                include_top=True,
                use_logits=True,
            ),
            num_classes=4,
        ),
        "unext": lambda: m.UNextModel.model_from_params(
            inp(),
            m.UNextParams(
                blocks=[
                    m.UNextBlockParams(filters=8, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True),
                    m.UNextBlockParams(filters=16, depth=1, ddepth=1, kernel=(1, 3), pool=(1, 2), strides=(1, 2), skip=True),
                ],
                output_kernel_size=(1, 3),
                include_top=True,
                use_logits=True,
            ),
            num_classes=4,
        ),
        "tsmixer": lambda: m.TsMixerModel.model_from_params(
            inp(), m.TsMixerParams(blocks=[m.TsMixerBlockParams(norm="batch", activation="relu", ff_dim=16)]), num_classes=4
        ),
    }


def run_one(name: str, build: Any, work: Path) -> str:
    from hkdeploy.errors import HkDeployError
    from hkdeploy.export import integrity, rewrites
    from hkdeploy.export.check import quantize_inputs, run_tflite
    from hkdeploy.export.convert import ConvertSpec, convert_in_subprocess
    from hkdeploy.export.inspect import inspect_model
    from hkdeploy.tflm import TflmRunner, probe_arena

    try:
        model = build()
    except Exception as exc:
        return f"{name}: cannot build ({type(exc).__name__}: {str(exc).splitlines()[0][:150]})"
    x = np.random.default_rng(0).normal(size=(64, T, 1)).astype(np.float32)
    try:
        rewrites.check_single_io(model)
        model, recs = rewrites.prepare(model, x)
        path = work / f"{name}.keras"
        model.save(path)
        np.savez(work / "calib.npz", x=x)
        spec = ConvertSpec(str(path), str(work / f"{name}.tflite"), "int8", "int8", True, "keras", str(work / "calib.npz"), True)
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
