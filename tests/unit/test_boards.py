"""Board registry and the board-fit check of export."""

from __future__ import annotations

from pathlib import Path

import pytest

from hkdeploy.boards import BoardFactory, get_board, list_boards
from hkdeploy.errors import ConfigError, UserError
from hkdeploy.export.api import check_board_fit
from hkdeploy.export.inspect import ModelInfo, TensorInfo
from hkdeploy.tflm import ArenaResult


def test_registry_has_the_evbs_and_sim() -> None:
    assert {"apollo3p_evb", "apollo4p_evb", "apollo4l_evb", "apollo510_evb", "sim"} <= set(
        BoardFactory.list()
    )
    boards = {b.name: b for b in list_boards()}
    assert boards["apollo510_evb"].core == "cortex-m55" and boards["apollo4p_evb"].core == "cortex-m4f"
    assert (
        boards["apollo4p_evb"].jlink_device == "AMAP42KK-KBR"
        and boards["apollo4p_evb"].load_address == 0x18000
    )
    assert boards["apollo4p_evb"].app_bytes == 1952 * 1024
    assert boards["sim"].platform == "host" and boards["sim"].limits().name == "apollo4p_evb"
    assert boards["apollo4p_evb"].platform == "neuralspot"
    assert boards["qemu_m4"].platform == "qemu" and boards["qemu_m4"].qemu_machine == "mps2-an386"
    assert boards["qemu_m55"].core == "cortex-m55" and boards["qemu_m55"].qemu_machine == "mps3-an547"


def test_a_board_file_without_platform_gets_one_from_its_core(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\nsoc: x\ncore: cortex-m4f\n")
    assert get_board(f).platform == "neuralspot"
    f.write_text("name: mine\nsoc: x\ncore: host\n")
    assert get_board(f).platform == "host"


def test_every_board_names_a_registered_platform() -> None:
    from hkdeploy.platforms import PlatformFactory, platform_of

    for board in list_boards():
        assert platform_of(board).name == board.platform
    assert set(PlatformFactory.list()) == {"host", "qemu", "neuralspot"}


def test_user_board_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nsoc: X\ncore: cortex-m4f\napp_bytes: 1000\nsram_bytes: 4096\n")
    assert get_board(path).app_bytes == 1000
    path.write_text("name: mine\nsoc: X\ncore: riscv\n")
    with pytest.raises(ConfigError, match="core must be one of"):
        get_board(path)
    with pytest.raises(UserError, match="unknown board"):
        get_board("apollo9_evb")


def _info(size: int) -> ModelInfo:
    t = TensorInfo("x", 0, [1, 10], "int8", 9, 0.1, 0, 10)
    return ModelInfo(size, "0" * 64, {}, [t], [t], 2, 0, 0)


def test_board_fit_names_the_numbers(tmp_path: Path) -> None:
    path = tmp_path / "small.yaml"
    path.write_text("name: small\nsoc: X\ncore: cortex-m4f\napp_bytes: 1000\nsram_bytes: 4096\n")
    board = get_board(path)
    arena = ArenaResult(host_min=1000, recorded=1000, board=3072, probes=3)
    assert check_board_fit(_info(900), arena, board)["model_bytes"] == 900
    with pytest.raises(
        UserError, match=r"model \(2000 bytes\) does not fit small's application MRAM \(1000 bytes\)"
    ):
        check_board_fit(_info(2000), arena, board)
    big = ArenaResult(host_min=5000, recorded=5000, board=8192, probes=3)
    with pytest.raises(UserError, match=r"arena \(8192 bytes\) does not fit small's SRAM \(4096 bytes\)"):
        check_board_fit(_info(900), big, board)
    # the virtual EVB refuses what the board it emulates would refuse
    sim = get_board("sim")
    huge = ArenaResult(host_min=4_000_000, recorded=4_000_000, board=5_000_000, probes=3)
    with pytest.raises(UserError, match="apollo4p_evb's SRAM"):
        check_board_fit(_info(900), huge, sim)


def test_boards_command_lists_every_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hkdeploy.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "mine.yaml"
    path.write_text("name: my_board\nsoc: X\ncore: cortex-m4f\napp_bytes: 1048576\nsram_bytes: 4096\n")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["boards", "--file", str(path)]) == 0
    out = buf.getvalue()
    for name in ("apollo3p_evb", "apollo4p_evb", "apollo4l_evb", "apollo510_evb", "sim", "my_board"):
        assert name in out
    assert "AMAP42KK-KBR" in out and "1024 KiB" in out
