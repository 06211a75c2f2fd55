"""The smallest arena that allocates on the 32-bit target, measured on the real firmware in QEMU.

The host TFLM runtime lays out 64-bit pointers, so its smallest arena is not the board's. Here the
board firmware itself (the link core, ``firmware/engine/hk_engine_tflm.cc`` and the QEMU platform)
is linked against upstream TFLM built from source for the board's core (``tflm_lib``, cached) and run
on ``qemu_m4`` (mps2-an386) or ``qemu_m55`` (mps3-an547):

1. a firmware with a generous arena boots; HELLO's ``arena_used`` is what TFLM allocated;
2. ``arena_used`` rounded up to 16 (TFLM uses the arena in 16-byte units) is built, booted and must
   allocate and run a frame; 16 B less is built and booted and must not allocate. When either
   check disagrees the size moves by 16 B (at most ``MAX_STEPS`` times) until both hold.

Only the firmware that allocated is ever run with a frame; one that did not is only asked HELLO
(which the engine answers with the status instead of running the model). Every QEMU process is a
:class:`~hkdeploy.platforms.qemu_process.QemuBoard` (own process group, dies with its parent,
stopped on exit); every wait is bounded. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hkdeploy.boards import Board, get_board
from hkdeploy.config.params import DeployParams
from hkdeploy.errors import CheckFailed, DeviceError, UserError

TARGETS = ("qemu_m4", "qemu_m55")
CORES = {"cortex-m4f": "cortex-m4", "cortex-m55": "cortex-m55"}
ALIGN = 16
MAX_STEPS = 8  # 16 B moves when arena_used rounded up is not exactly the boundary
HELLO_TIMEOUT_S = 60.0  # per firmware: boot + HELLO (the engine allocates before answering)
RUN_TIMEOUT_S = 120.0  # one frame on the emulated core (M4 reference kernels: ~47 M instructions)


def align16(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Boot:
    """What one firmware answered at HELLO (and, if it allocated, whether a frame ran)."""

    arena: int
    alloc_status: int
    arena_used: int
    ran: bool
    logs: list[str] = field(default_factory=list)

    @property
    def allocated(self) -> bool:
        return self.alloc_status == 0


@dataclass(frozen=True)
class Target32Arena:
    """The measured 32-bit minimum (``bytes``) and how it was found."""

    bytes: int  # smallest arena that allocated and ran a frame (a multiple of 16)
    fails_at: int  # bytes - 16: did not allocate
    arena_used: int  # HELLO's figure on the firmware with a generous arena
    board: str  # qemu_m4 | qemu_m55
    core: str  # cortex-m4 | cortex-m55
    kernels: str  # cmsis_nn | reference
    tflm_library: str  # the library's cache key (source revision, core, kernels, flags)
    generous_arena: int
    builds: int
    seconds: float
    how: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def target_for(name: str) -> Board:
    """The qemu board named ``name`` (``qemu_m4`` / ``qemu_m55``)."""
    if name not in TARGETS:
        raise UserError(
            f"arena target {name!r} is not an emulated board", hint=f"use one of {', '.join(TARGETS)}"
        )
    return get_board(name)


def target_for_board(board: Board) -> str:
    """The emulated board with ``board``'s core (Apollo5 / M55 -> qemu_m55, else qemu_m4)."""
    return "qemu_m55" if board.core == "cortex-m55" else "qemu_m4"


def boot(elf: Path, machine: str, arena: int, frame: bytes | None, log_dir: Path) -> Boot:
    """Start ``elf``, HELLO; run ``frame`` (zeros of the input size if None) only if it allocated."""
    from hkdeploy.link.client import DeviceClient, DeviceStatusError, Timeouts
    from hkdeploy.platforms.qemu_process import QemuBoard

    log_dir.mkdir(parents=True, exist_ok=True)
    with QemuBoard(elf, machine, log_path=log_dir / f"qemu-arena{arena}.log") as qb:
        with DeviceClient(qb.url, timeouts=Timeouts(packet=2.0, command=HELLO_TIMEOUT_S)) as dev:
            info = dev.hello()
            ran = False
            if info.alloc_status == 0:
                dev.timeouts = Timeouts(packet=RUN_TIMEOUT_S, command=RUN_TIMEOUT_S)
                data = frame if frame is not None else bytes(info.input.nbytes)
                try:
                    dev.run(data)
                    ran = True
                except DeviceStatusError:  # allocated but Invoke failed (e.g. a kernel's scratch)
                    ran = False
            else:  # TFLM's reason arrives as LOG right after HELLO: give it a moment
                deadline = time.monotonic() + 2.0
                while not dev.logs and time.monotonic() < deadline:
                    time.sleep(0.05)
            return Boot(arena, info.alloc_status, info.arena_used, ran, list(dev.logs))


BuildFn = Callable[[int], Path]
BootFn = Callable[[Path, int], Boot]


def search(build: BuildFn, run: BootFn, generous: int) -> tuple[int, int, int, int]:
    """(minimum, arena_used, builds, fails_at) with ``build(arena) -> elf`` and ``run(elf, arena)``.

    Raises:
        CheckFailed: the model does not allocate with the generous arena, or the boundary was not
            found within ``MAX_STEPS`` moves of 16 B.
    """
    first = run(build(generous), generous)
    builds = 1
    if not first.allocated or not first.ran:
        need = f"; it needs at least {first.arena_used} B" if first.arena_used > generous else ""
        what = "allocate" if not first.allocated else "run a frame"
        raise CheckFailed(
            f"the model does not {what} on the 32-bit target with a {generous} B arena{need}"
            + (f" ({' '.join(first.logs)[:200]})" if first.logs else ""),
            hint="a missing op or a model too large for the emulated board's RAM; see the export report",
        )
    size = align16(first.arena_used)
    ok: dict[int, bool] = {}

    def allocates(n: int) -> bool:
        nonlocal builds
        if n not in ok:
            builds += 1
            got = run(build(n), n)
            ok[n] = got.allocated and got.ran
        return ok[n]

    for _ in range(MAX_STEPS):
        if not allocates(size):
            size += ALIGN
            continue
        if size - ALIGN <= 0 or not allocates(size - ALIGN):
            return size, first.arena_used, builds, size - ALIGN
        size -= ALIGN
    raise CheckFailed(
        f"no arena boundary within {MAX_STEPS} x {ALIGN} B of HELLO's arena_used {first.arena_used} B",
        hint="the engine's arena_used does not match what TFLM needs; report it (docs/tflm.md)",
    )


def measure(
    params: DeployParams,
    header_dir: Path,
    ops: Sequence[str],
    target: str,
    work: Path,
    *,
    generous: int | None = None,
    frame: bytes | None = None,
) -> Target32Arena:
    """Measure the model in ``header_dir`` (model_buffer.h, model_ops.h, model_config.h) on ``target``.

    Kernels are ``firmware.tflm_kernels``; the TFLM trees come from ``firmware.*`` / the environment.

    Raises:
        ToolError: a tree or the toolchain is missing, or a build step failed.
        DeviceError: QEMU did not start or the firmware did not answer.
        CheckFailed: the model does not allocate, or no boundary was found.
    """
    from hkdeploy.platforms.qemu import QemuPlatform
    from hkdeploy.platforms.qemu_build import build_qemu_firmware, get_machine
    from hkdeploy.platforms.tflm_lib import engine_build, library_for

    t0 = time.monotonic()
    board = target_for(target)
    QemuPlatform().preflight(params, board)
    assert board.qemu_machine is not None  # preflight checked it
    machine = board.qemu_machine
    core = CORES[board.core]
    kernels = params.firmware.tflm_kernels
    lib = library_for(params, core, kernels, ops=list(ops))
    eng = engine_build(lib, header_dir)
    m = get_machine(machine)
    big = generous or min(1 << 20, m.ram_bytes // 2)
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"

    def build(arena: int) -> Path:
        defines = dict(eng.defines)
        defines["HK_ARENA_SIZE"] = arena
        out = work / f"hk_{target}_arena{arena}.elf"
        build_qemu_firmware(
            machine,
            eng.sources,
            out,
            include_dirs=eng.include_dirs,
            system_include_dirs=eng.system_include_dirs,
            defines=defines,
            libs=eng.libs,
            board_name=board.name,
            build_id=f"arena32-{arena}",
            log=log,
        )
        return out

    def run(elf: Path, arena: int) -> Boot:
        try:
            return boot(elf, machine, arena, frame, work / "logs")
        except DeviceError as exc:
            raise DeviceError(
                f"the {target} firmware with a {arena} B arena did not answer: {exc.message}",
                hint=f"see {work / 'logs'}; run `hkdeploy validate --board {target}` by hand",
            ) from exc

    minimum, used, builds, fails_at = search(build, run, big)
    return Target32Arena(
        bytes=minimum,
        fails_at=fails_at,
        arena_used=used,
        board=target,
        core=core,
        kernels=kernels,
        tflm_library=lib.key,
        generous_arena=big,
        builds=builds,
        seconds=round(time.monotonic() - t0, 1),
        how=(
            f"the board firmware on {target} ({machine}, upstream TFLM {kernels}): HELLO's arena_used "
            f"with a {big} B arena, rounded up to {ALIGN}; that size allocated and ran a frame, "
            f"{ALIGN} B less did not allocate"
        ),
    )
