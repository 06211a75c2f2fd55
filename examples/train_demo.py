"""Train the bundled demo model (examples/demo_model.keras) deterministically.

A small Conv1D rhythm classifier (4 classes: NSR, SBRAD, STACH, AFIB) on 1250-sample frames at
250 Hz from the ``synthetic`` dataset, with the data settings of ``configs/demo.json``. One of its
convolutions is dilated: exactly the layer that breaks on TFLM when converted with a dynamic batch.

Usage: ``python examples/train_demo.py [--epochs N] [--out examples/demo_model.keras]``
The committed model was produced by this script with its defaults.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")

HERE = Path(__file__).resolve().parent


def build_model(frame_size: int, num_classes: int):  # type: ignore[no-untyped-def]
    import keras

    inputs = keras.Input(shape=(frame_size, 1), name="ecg")
    x = keras.layers.Conv1D(8, 7, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Conv1D(16, 5, dilation_rate=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.DepthwiseConv1D(5, padding="same")(x)
    x = keras.layers.Conv1D(24, 1, activation="relu")(x)
    x = keras.layers.Conv1D(32, 5, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dropout(0.1)(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="demo_rhythm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=HERE.parent / "configs" / "demo.json")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=Path, default=HERE / "demo_model.keras")
    args = parser.parse_args()

    import keras
    import numpy as np
    import tensorflow as tf

    from hkdeploy.config import load_params
    from hkdeploy.datasets import load_split

    params = load_params(args.config).params
    keras.utils.set_random_seed(params.seed)
    tf.config.experimental.enable_op_determinism()

    train = load_split(params, "train")
    test = load_split(params, "test")
    print(f"train {train.x.shape} classes {np.bincount(train.y)}; test {test.x.shape}")

    model = build_model(params.frame_size, params.num_classes)
    model.summary()
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=args.epochs * (len(train.x) // 32 + 1))
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(
        train.x,
        train.y,
        batch_size=32,
        epochs=args.epochs,
        validation_data=(test.x, test.y),
        verbose=2,
        shuffle=True,
    )
    loss, acc = model.evaluate(test.x, test.y, verbose=0)
    print(f"test accuracy {acc:.4f} loss {loss:.4f} params {model.count_params()}")
    model.save(args.out)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
