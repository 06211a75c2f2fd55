"""The board arena margin covers the 32-bit targets measured in LESSONS.md (section B)."""

from __future__ import annotations

from hkdeploy.tflm import board_arena_size

# One int8 KWS model: the host tflite-micro runtime recorded 24,272 B; upstream TFLM built for the
# targets needed 22,772 B (M4, reference kernels), 22,820 B (M4, CMSIS-NN), 27,300 B (M55, CMSIS-NN).
HOST = 24_272
TARGETS = {"m4_reference": 22_772, "m4_cmsis_nn": 22_820, "m55_cmsis_nn": 27_300}


def test_margin_covers_every_measured_target() -> None:
    size = board_arena_size(HOST)
    for target, needed in TARGETS.items():
        assert size >= needed, (target, size, needed)


def test_board_arena_is_16_aligned_and_bounded() -> None:
    for host in (1, 100, 4_000, HOST, 123_457, 1_000_003):
        size = board_arena_size(host)
        assert size % 16 == 0
        assert size >= host + 2048  # at least 2 KiB for small models
        assert size <= max(host * 1.25 + 16, host + 2048 + 16)  # never more than the documented margin
