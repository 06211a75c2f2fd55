"""MLPerf Tiny DUT mode: the MLCommons / EEMBC benchmark runner's text protocol.

- ``firmware``: how the DUT image is compiled (virtual EVB and neuralSPOT app); ``build``: ``hkdeploy
  build --app mlperf``.
- ``dataset``: the runner's dataset folder (per-input ``.bin`` files + ``y_labels.csv``).
- ``devices``: the runner's ``devices.yaml`` entry for a port.
- ``client`` / ``check``: our own host side of the protocol and ``hkdeploy mlperf check``.

No TensorFlow here.
"""

from __future__ import annotations

import numpy as np

MODEL_IDS = ("custom", "kws01", "vww01", "ic01", "ad01")
RESULT_DECIMALS = 6  # firmware/dut/hk_dut.h HK_DUT_RESULT_DECIMALS
CMD_MAX = 80  # HK_DUT_CMD_MAX
HEX_CHUNK = 31  # bytes per `db` command, as the runner sends them
PROFILE = "ULPMark for tinyML Firmware V0.0.1"


def format_result(value: float) -> str:
    """A dequantized output as the DUT prints it: 6 decimals, correctly rounded (half to even).

    Python's ``%`` formatting rounds the exact binary value, as firmware/dut/hk_dut.c does.
    """
    v = float(np.float32(value))
    if v != v:
        return "nan"
    text = f"{v:.{RESULT_DECIMALS}f}"
    return "0.000000" if text == "-0.000000" and v == 0.0 else text


def dequantize(raw: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 outputs as the firmware computes them: ``((float)q - zp) * scale`` in float32."""
    if raw.dtype == np.float32:
        return raw.astype(np.float32)
    if not scale:
        return raw.astype(np.float32)
    return (raw.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def runner_baud(model_id: str) -> dict[str, int]:
    """The runner's DUT baud rates: 9600 behind the energy interface board; 921600 for ad01."""
    fast = 921600 if model_id == "ad01" else 115200
    return {"energy": 9600, "performance": fast, "accuracy": fast}
