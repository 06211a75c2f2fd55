"""The 32-bit arena search (hkdeploy.platforms.arena32.search) with a firmware double, and the margin.

The double (``FirmwareDouble``) stands for "build the firmware with this arena, boot it, HELLO": it
allocates when the arena is at least ``need`` and reports ``reported`` as arena_used with a generous
arena, the way TFLM's arena_used_bytes can sit a few bytes off the boundary.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hkdeploy.errors import CheckFailed
from hkdeploy.export.target32 import board_arena_from_target32
from hkdeploy.platforms.arena32 import MAX_STEPS, Boot, search


class FirmwareDouble:
    """TEST DOUBLE of build + boot: allocates iff arena >= need; a frame runs only then."""

    def __init__(self, need: int, reported: int) -> None:
        self.need, self.reported = need, reported
        self.built: list[int] = []
        self.ran_on: list[int] = []

    def build(self, arena: int) -> Path:
        self.built.append(arena)
        return Path(f"fw{arena}.elf")

    def run(self, elf: Path, arena: int) -> Boot:
        assert elf == Path(f"fw{arena}.elf")
        ok = arena >= self.need
        if ok:
            self.ran_on.append(arena)
        return Boot(arena, 0 if ok else 2, self.reported if ok else max(arena, self.need), ran=ok)


def test_arena_used_rounded_up_is_the_boundary() -> None:
    fw = FirmwareDouble(need=11_456, reported=11_444)
    minimum, used, builds, fails_at = search(fw.build, fw.run, 1 << 20)
    assert (minimum, used, builds, fails_at) == (11_456, 11_444, 3, 11_440)
    assert fw.built == [1 << 20, 11_456, 11_440]
    assert 11_440 not in fw.ran_on  # a firmware that did not allocate never runs a frame


def test_boundary_above_arena_used_is_found() -> None:
    fw = FirmwareDouble(need=11_488, reported=11_444)  # TFLM needed 2 x 16 B more than it said
    minimum, _, builds, fails_at = search(fw.build, fw.run, 1 << 20)
    assert (minimum, fails_at) == (11_488, 11_472) and builds == 4  # 11,472 is not rebuilt


def test_boundary_below_arena_used_is_found() -> None:
    fw = FirmwareDouble(need=11_424, reported=11_444)
    minimum, _, _, fails_at = search(fw.build, fw.run, 1 << 20)
    assert (minimum, fails_at) == (11_424, 11_408)


def test_no_allocation_with_the_generous_arena_fails() -> None:
    fw = FirmwareDouble(need=2 << 20, reported=0)
    with pytest.raises(CheckFailed, match="needs at least 2097152 B"):
        search(fw.build, fw.run, 1 << 20)
    assert fw.ran_on == []


def test_allocated_but_invoke_failed_is_not_a_working_arena() -> None:
    class InvokeFails(FirmwareDouble):
        def run(self, elf: Path, arena: int) -> Boot:
            return Boot(arena, 0, self.reported, ran=False)

    with pytest.raises(CheckFailed, match="does not run a frame"):
        search(InvokeFails(need=0, reported=100).build, InvokeFails(need=0, reported=100).run, 1 << 20)


def test_search_is_bounded() -> None:
    fw = FirmwareDouble(need=11_456 + 16 * (MAX_STEPS + 2), reported=11_444)
    with pytest.raises(CheckFailed, match="no arena boundary"):
        search(fw.build, fw.run, 1 << 20)
    assert len(fw.built) <= MAX_STEPS + 2


def test_margin_by_hand() -> None:
    # 11,456 + ceil(5 % = 572.8) + 16 = 12,045 -> 12,048 (16-aligned); 12,048 / 11,456 = 1.052
    assert board_arena_from_target32(11_456) == 12_048
    # on another core: + 25 % = 2,864 + 16 = 14,336
    assert board_arena_from_target32(11_456, core_matches=False) == 14_336
    for n in (1_024, 11_456, 27_300, 200_000):  # (below ~400 B the fixed 16 B alone is > 4 %)
        assert 1.0 < board_arena_from_target32(n) / n <= 1.10
        assert board_arena_from_target32(n) % 16 == 0
