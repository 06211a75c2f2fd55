"""The per-layer views of validate (hkdeploy.validate.layers): joining a device's PROFILE with the
export's layers, comparing operator outputs, naming the first layer that differs."""

from __future__ import annotations

from typing import Any

import numpy as np

from hkdeploy.link import protocol as p
from hkdeploy.link.client import CapturedTensor, OpCycles, Profile
from hkdeploy.platforms.base import Counter
from hkdeploy.validate import layers

LAYERS: list[dict[str, Any]] = [
    {
        "index": 0,
        "op": "RESHAPE",
        "output": "m/conv1d/convolution/ExpandDims",
        "output_shape": [1, 1, 6, 1],
        "macs": 0,
    },
    {
        "index": 1,
        "op": "CONV_2D",
        "output": "m/re_lu/Relu;m/conv1d/BiasAdd",
        "output_shape": [1, 1, 3, 2],
        "macs": 600,
    },
    {"index": 2, "op": "FULLY_CONNECTED", "output": "Identity", "output_shape": [1, 4], "macs": 24},
]
INSTR = Counter("instructions", "instructions on emulated qemu_m4", False, per_count=40.0)


class FakeTensorDevice:
    """TEST DOUBLE of DeviceClient for layer_diff: answers TENSOR from given arrays."""

    def __init__(self, outputs: dict[int, np.ndarray], features: p.Feature = p.Feature.TENSOR) -> None:
        self.outputs = outputs
        self._features = features
        self.info = type("Hello", (), {"op_count": len(outputs)})()
        self.inputs: list[bytes] = []

    def features(self) -> p.Feature:
        return self._features

    def set_input(self, frame: bytes) -> None:
        self.inputs.append(frame)

    def tensor(self, op_index: int) -> CapturedTensor:
        a = self.outputs[op_index]
        return CapturedTensor(op_index, 10 + op_index, 9, a.astype(np.int8).tobytes())


def host_outputs() -> dict[int, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        10 + k: rng.integers(-128, 128, int(np.prod(s["output_shape"])), dtype=np.int8)
        for k, s in enumerate(LAYERS)
    }


def test_profile_joins_cycles_with_the_exports_macs_in_the_counters_unit() -> None:
    prof = Profile(3, [OpCycles(0, 22, 1), OpCycles(1, 3, 50), OpCycles(2, 9, 10)], 65)
    sec = layers.profile_section(prof, LAYERS, INSTR)
    assert sec["available"] and sec["problems"] == []
    assert [r["op"] for r in sec["ops"]] == ["RESHAPE", "CONV_2D", "FULLY_CONNECTED"]
    conv = sec["ops"][1]
    assert conv["cycles"] == 2000 and conv["raw"] == 50 and conv["macs"] == 600
    assert conv["macs_per_cycle"] == 600 / 2000 and abs(conv["share"] - 50 / 65) < 1e-12
    assert sec["cycles_total"] == 65 * 40 and sec["cycles_interpreter"] == 4 * 40
    assert conv["layer"] == "m/re_lu/Relu"


def test_profile_of_another_model_is_flagged() -> None:
    prof = Profile(2, [OpCycles(0, 22, 1), OpCycles(1, 17, 5)], 6)
    problems = layers.profile_section(prof, LAYERS, INSTR)["problems"]
    assert "the device runs 2 operators, the export has 3" in problems[0]


def test_no_profile_says_why() -> None:
    sec = layers.profile_section("the device's engine has no per-operator timer", LAYERS, INSTR)
    assert sec == {"available": False, "reason": "the device's engine has no per-operator timer"}


def test_layer_diff_names_the_first_operator_that_differs_and_where() -> None:
    host = host_outputs()
    dev = {k: host[10 + k].copy() for k in range(3)}
    dev[1][5] = np.int8(int(dev[1][5]) + (3 if dev[1][5] < 100 else -3))  # last position of [1, 1, 3, 2]
    dev[2][0] ^= 1  # later operators differ too (the difference propagates): the first one is named
    device = FakeTensorDevice(dev)
    frame = np.arange(6, dtype=np.int8)
    diff = layers.layer_diff(device, 17, frame, LAYERS, host)  # type: ignore[arg-type]
    first = diff["first_layer"]
    assert diff["frame"] == 17 and diff["available"] and diff["checked"] == 2
    assert (first["index"], first["op"], first["tensor_index"]) == (1, "CONV_2D", 11)
    assert (first["differing"], first["values"], first["max_lsb"], first["first_element"]) == (1, 6, 3.0, 5)
    assert first["where"] == [[0, 0], [0, 0], [2, 2], [1, 1]]
    assert device.inputs == [frame.tobytes()]
    text = layers.describe_diff(diff)
    assert "operator 1 CONV_2D" in text and "max 3 LSB" in text and "[0, 0, 2, 1] of [1, 1, 3, 2]" in text


def test_layer_diff_when_every_operator_agrees() -> None:
    host = host_outputs()
    device = FakeTensorDevice({k: host[10 + k] for k in range(3)})
    diff = layers.layer_diff(device, 0, np.zeros(6, np.int8), LAYERS, host)  # type: ignore[arg-type]
    assert diff["first_layer"] is None and diff["checked"] == 3 and "did not repeat" in diff["reason"]


def test_layer_diff_without_the_feature_or_with_a_foreign_tensor() -> None:
    host = host_outputs()
    no = FakeTensorDevice({k: host[10 + k] for k in range(3)}, features=p.Feature.PROFILE)
    assert not layers.layer_diff(no, 0, np.zeros(6, np.int8), LAYERS, host)["available"]  # type: ignore[arg-type]
    foreign = {11: host[11], 12: host[12]}  # the device's operator 0 writes tensor 10: not in this model
    d = layers.layer_diff(
        FakeTensorDevice({k: host[10 + k] for k in range(3)}), 0, np.zeros(6, np.int8), LAYERS, foreign
    )  # type: ignore[arg-type]
    assert not d["available"] and "another model" in d["reason"]


def test_compare_op_on_a_size_or_type_mismatch() -> None:
    host = np.zeros(4, np.int8)
    assert layers.compare_op(9, bytes(4), host) is None
    bad = layers.compare_op(9, bytes(3), host)
    assert bad is not None and bad["max_lsb"] is None and "3 B" in bad["why"]
    assert layers.compare_op(7, bytes(8), host) is not None  # int16 on the device, int8 on the host


def test_first_mismatch() -> None:
    golden = np.array([[1, 2], [3, 4], [5, 6]], np.int8)
    done = {2: {"output": [5, 7]}, 0: {"output": [1, 2]}, 1: {"output": [3, 4]}}
    assert layers.first_mismatch(done, golden) == 2
    done[2]["output"] = [5, 6]
    assert layers.first_mismatch(done, golden) is None
