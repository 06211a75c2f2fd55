"""The board registry: one YAML data file per board (facts, not classes).

``get_board(name_or_path)`` returns a validated ``Board``; ``list_boards()`` the registered names.
A user adds a board with their own file (config ``board.file``). The ``sim`` board (the virtual EVB)
emulates the memory limits of the board named by ``emulate``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hkdeploy.errors import ConfigError, UserError
from hkdeploy.factory import Factory

_HERE = Path(__file__).resolve().parent


class Board(BaseModel):
    """Facts about one board."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    soc: str
    core: Literal["cortex-m4f", "cortex-m55", "host"]
    clock_hz: int | None = Field(None, gt=0)
    mram_bytes: int | None = Field(None, gt=0, description="MRAM/flash size")
    app_bytes: int | None = Field(None, gt=0, description="MRAM/flash bytes available to the application")
    sram_bytes: int | None = Field(None, gt=0)
    tcm_bytes: int | None = Field(None, ge=0)
    jlink_device: str | None = None
    pyocd_target: str | None = Field(
        None, description="pyOCD target name (CMSIS pack part, e.g. amap42kk_kbr)"
    )
    load_address: int | None = Field(None, ge=0)
    neuralspot_platform: str | None = None
    neuralspot_as_version: str | None = None
    usb_vid: int | None = Field(None, ge=0, le=0xFFFF)
    usb_pid: int | None = Field(None, ge=0, le=0xFFFF)
    uart_baud: int | None = Field(None, gt=0)
    link: Literal["usb", "uart", "pty"] = "usb"
    mlperf_timestamp_pin: int | None = Field(
        None, ge=0, description="MLPerf energy mode: GPIO the DUT pulls low for each timestamp"
    )
    mlperf_uart: int = Field(0, ge=0, description="MLPerf DUT mode: UART module the runner talks to")
    emulate: str | None = Field(None, description="host platform: the board whose limits are emulated")
    platform: str = Field(
        "",
        description="the platform that builds and reaches this board (host | qemu | neuralspot); "
        "default: host for core 'host', else neuralspot",
    )
    qemu_machine: str | None = Field(
        None, description="qemu platform: the QEMU machine (-M), e.g. mps2-an386"
    )

    @model_validator(mode="before")
    @classmethod
    def _default_platform(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("platform"):
            data = {**data, "platform": "host" if data.get("core") == "host" else "neuralspot"}
        return data

    def limits(self) -> Board:
        """The board whose memory limits apply (the emulated one for ``sim``)."""
        return get_board(self.emulate) if self.emulate else self


def load_board_file(path: Path) -> Board:
    """Read and validate one board YAML file."""
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"board file {path} does not exist", hint="check board.file in the config"
        ) from None
    except yaml.YAMLError as exc:
        from hkdeploy.config import YAML_HINT, yaml_problem

        raise ConfigError(
            f"board file {path} is not valid YAML: {yaml_problem(exc)}", hint=YAML_HINT
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"board file {path} must hold a mapping of board facts, got a {type(data).__name__}",
            hint="see hkdeploy/boards/*.yaml for complete examples",
        )
    try:
        return Board.model_validate(data)
    except ValidationError as exc:
        from hkdeploy.config import describe_validation_error

        raise ConfigError(
            f"board file {path}: " + "; ".join(describe_validation_error(exc)),
            hint="see hkdeploy/boards/*.yaml for complete examples",
        ) from None


BoardFactory: Factory[Path] = Factory("board")
for _file in sorted(_HERE.glob("*.yaml")):
    BoardFactory.register(_file.stem, _file)


def get_board(name_or_path: str | Path) -> Board:
    """A registered board by name, or a board file of the user's."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return load_board_file(candidate)
    path = BoardFactory.get(str(name_or_path))
    board = load_board_file(path)
    if board.emulate and not BoardFactory.has(board.emulate):
        raise UserError(
            f"board {board.name} emulates unknown board {board.emulate}",
            hint="`hkdeploy boards` lists the boards an emulate: field may name",
        )
    return board


def list_boards() -> list[Board]:
    """Every registered board."""
    return [get_board(name) for name in BoardFactory.list()]


def board_for(params_board: object) -> Board:
    """The board of a config's ``board`` section (``file`` wins over ``name``)."""
    file = getattr(params_board, "file", None)
    return get_board(file) if file else get_board(str(getattr(params_board, "name", "")))
