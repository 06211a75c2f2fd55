"""The board arena sized from the 32-bit target (``firmware.arena_target``), the export's hook.

When asked, the export measures the smallest arena that allocates on the board firmware built for an
emulated Cortex-M (``hkdeploy.platforms.arena32``) and sizes the board arena from it:

    board arena = 32-bit minimum + 5 % + 16 B, rounded up to 16 B  (+ 20 % more if the target's core
                                                                     is not the board's)

What the margin covers (measured figures in docs/export.md):

- 5 %: the board's TFLM is not the one measured (the SDK's library, another tflite-micro revision:
  TFLM's own objects in the arena's tail and the per-tensor bookkeeping differ in size), and CMSIS-NN
  revisions ask for different scratch buffers (the demo: reference kernels 11,364 B, CMSIS-NN M4
  11,444 B, Helium M55 11,460 B of arena_used);
- 16 B: alignment (TFLM floors the arena to 16 B and aligns its start: a board placing the array at
  another address can lose up to 15 B);
- 20 % when the target's core differs from the board's (M4 measured for an M55 board or the other
  way): CMSIS-NN's Helium and DSP paths take different scratch (a KWS model: 22,820 B on M4, 27,300 B
  on M55, +19.6 %). Measure on the matching core (``auto``) to avoid it.

The host figure (64-bit) stays in the report beside it; host-side runners use ``max(board, host_min)``.
Without the trees or tools the export warns in one line and keeps the host-based margin.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from hkdeploy.boards import Board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import ToolError
from hkdeploy.tflm import ArenaResult

if TYPE_CHECKING:
    import numpy.typing as npt

    from hkdeploy.export.inspect import ModelInfo

MARGIN_FRACTION = 0.05
MARGIN_ALIGN = 16
CORE_MISMATCH_FRACTION = 0.20


def board_arena_from_target32(minimum: int, core_matches: bool = True) -> int:
    """32-bit minimum + 5 % (+ 20 % on another core) + 16 B, rounded up to 16."""
    frac = MARGIN_FRACTION + (0.0 if core_matches else CORE_MISMATCH_FRACTION)
    size = minimum + math.ceil(minimum * frac) + MARGIN_ALIGN
    return (size + 15) // 16 * 16


def resolve_target(params: DeployParams, board: Board) -> str | None:
    """The emulated board to measure on (``auto``: the one with ``board``'s core), or None."""
    from hkdeploy.platforms.arena32 import target_for_board

    target = params.firmware.arena_target
    if target is None:
        return None
    return target_for_board(board) if target == "auto" else target


def size_from_target32(
    params: DeployParams,
    board: Board,
    info: ModelInfo,
    arena: ArenaResult,
    tflite_bytes: bytes,
    model_name: str,
    frame: npt.NDArray[Any] | None,
) -> ArenaResult:
    """``arena`` with ``board`` and ``target32`` from the 32-bit measurement (unchanged when not asked;
    a one-line warning and unchanged when the trees or tools are missing). ``frame``: one raw input
    run on each firmware that allocated."""
    from hkdeploy.console import warn
    from hkdeploy.export.artifacts import render_model_buffer, render_model_config, render_model_ops
    from hkdeploy.fsutil import write_text
    from hkdeploy.platforms.arena32 import CORES, measure, target_for

    target = resolve_target(params, board)
    if target is None:
        return arena
    work = params.job_dir / "arena32"
    model_dir = work / "model"
    var = params.tflm_var_name
    headers = {
        "model_buffer.h": render_model_buffer(tflite_bytes, info, var, model_name),
        "model_ops.h": render_model_ops(info, var, model_name),
        "model_config.h": render_model_config(info, arena, var, model_name, params.labels()),
    }
    for name, text in headers.items():
        write_text(model_dir / name, text)
    ops = sorted({layer.op for layer in info.layers})
    raw = frame.tobytes() if frame is not None else None
    try:
        measured = measure(params, model_dir, ops, target, work / target, frame=raw)
    except ToolError as exc:
        warn(f"arena not measured on {target} ({exc.message}); board arena from the host figure + margin")
        return arena
    same_core = CORES.get(target_for(target).core) == CORES.get(board.core)
    size = board_arena_from_target32(measured.bytes, same_core)
    record: dict[str, Any] = measured.to_dict()
    record["margin"] = {
        "fraction": MARGIN_FRACTION + (0.0 if same_core else CORE_MISMATCH_FRACTION),
        "bytes": size - measured.bytes,
        "covers": "5 %: the board's TFLM/CMSIS-NN revision (SDK library vs upstream: allocator objects, "
        "scratch); 16 B: arena alignment"
        + ("" if same_core else f"; 20 %: {target}'s core is not {board.name}'s (CMSIS-NN scratch differs)"),
    }
    record["ratio"] = round(size / measured.bytes, 4)
    record["host_based_board"] = arena.board
    return dataclasses.replace(arena, board=size, target32=record)
