"""What a device's ``cycles`` count: HELLO's ``counter_kind`` (firmware/core/hk_platform.h).

Reports and the terminal label timings with :func:`counter_label`, so host time of the virtual EVB
or instruction ticks of an emulated Cortex-M are never shown as an Apollo board's latency.
"""

from __future__ import annotations

from enum import IntEnum


class CounterKind(IntEnum):
    """``hk_counter_kind_t``; the numbers are wire values (a test checks them against the C enum)."""

    NONE = 0
    CPU_CYCLES = 1
    HOST_NS = 2
    EMU_TICKS = 3


_LABELS = {
    CounterKind.NONE: "no cycle counter on this device",
    CounterKind.CPU_CYCLES: "MCU core clock cycles",
    CounterKind.HOST_NS: "host time of the virtual EVB (ns), not the board's latency",
    CounterKind.EMU_TICKS: "SysTick ticks on an emulated Cortex-M (QEMU -icount: proportional to "
    "instructions), not Apollo latency",
}


def counter_label(kind: int) -> str:
    """One line saying what ``cycles`` (and the microseconds derived from them) mean."""
    try:
        return _LABELS[CounterKind(kind)]
    except ValueError:
        return f"unknown counter kind {kind} (update hkdeploy)"


def is_board_latency(kind: int) -> bool:
    """True only when the numbers are a real MCU's cycles (the only kind that is board latency)."""
    return kind == CounterKind.CPU_CYCLES
