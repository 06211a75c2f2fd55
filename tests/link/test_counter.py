"""The counter kinds of HELLO agree with the firmware's enum, and each is labelled truthfully."""

from __future__ import annotations

import re

from hkdeploy.link.counter import CounterKind, counter_label, is_board_latency
from hkdeploy.paths import firmware_dir


def test_python_kinds_match_hk_platform_h() -> None:
    header = (firmware_dir() / "core" / "hk_platform.h").read_text()
    enum = header[header.index("typedef enum {") : header.index("} hk_counter_kind_t;")]
    c_kinds = {name: int(value) for name, value in re.findall(r"HK_COUNTER_(\w+)\s*=\s*(\d+)", enum)}
    assert c_kinds == {k.name: k.value for k in CounterKind}


def test_labels_never_call_emulated_or_host_time_board_latency() -> None:
    assert "not the board's latency" in counter_label(CounterKind.HOST_NS)
    assert "not Apollo latency" in counter_label(CounterKind.EMU_TICKS)
    assert "cycles" in counter_label(CounterKind.CPU_CYCLES)
    assert "unknown counter kind 9" in counter_label(9)
    assert [k for k in CounterKind if is_board_latency(k)] == [CounterKind.CPU_CYCLES]
