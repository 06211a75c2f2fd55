"""Cross-build of the hkdeploy firmware for an emulated Cortex-M board (QEMU mps2-an386 / mps3-an547).

The link core, the QEMU platform (``firmware/platform/qemu``) and an engine are compiled with
``arm-none-eabi-gcc`` (C) / ``arm-none-eabi-g++`` (C++) and linked into one ELF that
``qemu-system-arm -kernel`` runs. Every step goes through :mod:`hkdeploy.proc` (logged, bounded,
dry-run). The engine is a parameter: CI passes ``tests/c/fake_engine.c`` (a test double); the TFLM
engine comes as C++ sources plus a TFLM static library (``libs``). Nothing here imports TensorFlow.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hkdeploy.errors import ToolError, UserError
from hkdeploy.link import CORE_SOURCES
from hkdeploy.paths import firmware_dir
from hkdeploy.proc import Command, git_head, run

ARM_GCC = "arm-none-eabi-gcc"
ARM_GXX = "arm-none-eabi-g++"
ARM_SIZE = "arm-none-eabi-size"
GCC_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"
GXX_HINT = "apt-get install libstdc++-arm-none-eabi-newlib (C++ engines need it)"
COMPILE_HINT = (
    "the compiler's message is above; a missing TFLM header means the TFLM trees (HK_TFLM_ROOT / "
    "HK_TFLM_DOWNLOADS) are incomplete, a missing C++ standard header means: " + GXX_HINT
)

PLATFORM_SOURCES = (
    "platform/qemu/hk_qemu_startup.c",
    "platform/qemu/hk_qemu_main.c",
    "platform/qemu/hk_qemu_uart.c",
    "platform/qemu/hk_qemu_fault.c",
)
_CXX_SUFFIXES = {".cc", ".cpp", ".cxx"}


@dataclass(frozen=True)
class Machine:
    """One QEMU machine the platform supports (facts checked with ``info mtree``, QEMU 7.2)."""

    name: str
    cpu: str
    cpu_flags: tuple[str, ...]
    define: str
    linker_script: str
    systick_hz: int
    code_bytes: int
    ram_bytes: int
    unmapped_address: int  # nothing answers here: a load faults (fault-injection tests)


MACHINES: dict[str, Machine] = {
    "mps2-an386": Machine(
        name="mps2-an386",
        cpu="cortex-m4",
        cpu_flags=("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"),
        define="HK_QEMU_MACHINE_AN386",
        linker_script="mps2_an386.ld",
        systick_hz=25_000_000,
        code_bytes=4 << 20,
        ram_bytes=4 << 20,
        unmapped_address=0x30000000,
    ),
    "mps3-an547": Machine(
        name="mps3-an547",
        cpu="cortex-m55",
        cpu_flags=("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
        define="HK_QEMU_MACHINE_AN547",
        linker_script="mps3_an547.ld",
        systick_hz=32_000_000,
        code_bytes=512 << 10,
        ram_bytes=512 << 10,
        unmapped_address=0x18000000,  # (0x60000000-0xdfffffff is DDR here)
    ),
}

COMMON_FLAGS = (
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
    "-fno-common",
)
C_FLAGS = ("-std=c11",)
CXX_FLAGS = ("-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-use-cxa-atexit")
LINK_FLAGS = ("-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections")


@dataclass
class QemuBuild:
    """What a build made (``sizes`` empty for a dry run)."""

    machine: Machine
    elf: Path
    commands: list[Command] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def get_machine(name: str) -> Machine:
    """The machine called ``name``.

    Raises:
        UserError: not a machine this platform supports.
    """
    try:
        return MACHINES[name]
    except KeyError:
        raise UserError(
            f"unknown QEMU machine {name!r}", hint=f"use one of: {', '.join(sorted(MACHINES))}"
        ) from None


def default_build_id() -> str:
    """``git-<12 hex>`` of the checkout the firmware comes from, else ``unknown`` (never a time)."""
    head = git_head(firmware_dir().parent)
    return f"git-{head[:12]}" if head else "unknown"


def _define_flag(name: str, value: str | int | None) -> str:
    return f"-D{name}" if value is None else f"-D{name}={value}"


def partial_path(out: Path) -> Path:
    """Where the linker writes; renamed over ``out`` only after a good link (never a half ELF)."""
    return out.parent / f".{out.name}.partial"


def build_commands(
    machine: str,
    engine_sources: Sequence[Path],
    out: Path,
    *,
    include_dirs: Sequence[Path] = (),
    defines: Mapping[str, str | int | None] | None = None,
    libs: Sequence[Path | str] = (),
    board_name: str | None = None,
    build_id: str | None = None,
    timeout: float = 600.0,
    system_include_dirs: Sequence[Path] = (),
    core_sources: Sequence[str] = CORE_SOURCES,
) -> tuple[Machine, list[Command]]:
    """The compile and link commands for one ELF (objects go next to it, in ``<out>.obj/``).

    Args:
        machine: ``mps2-an386`` (Cortex-M4F) or ``mps3-an547`` (Cortex-M55).
        engine_sources: the engine's ``.c`` / ``.cc`` files (``hk_engine.h``'s implementation).
        out: the ELF to write.
        include_dirs: extra ``-I`` folders (e.g. the export's headers).
        system_include_dirs: third-party folders (TFLM, CMSIS, flatbuffers) as ``-isystem``: their
            headers are not held to our ``-Wextra -Werror`` (TFLM's trip ``-Wunused-parameter``).
        defines: extra ``-D`` macros (value None: defined without a value).
        libs: static libraries (paths) or ``-l`` names, linked after the objects.
        board_name: reported in HELLO (default ``qemu:<machine>``).
        build_id: reported in HELLO (default :func:`default_build_id`).
        core_sources: the front end, relative to firmware/ (default the link core; the MLPerf DUT
            passes ``hkdeploy.mlperf.firmware.DUT_SOURCES`` with ``HK_APP_MLPERF`` defined).
    """
    m = get_machine(machine)
    fw = firmware_dir()
    sources = [fw / s for s in (*PLATFORM_SOURCES, *core_sources)] + [Path(s) for s in engine_sources]
    cxx = any(s.suffix in _CXX_SUFFIXES for s in sources)
    macro = {
        m.define: 1,
        "HK_BOARD_NAME": f'"{board_name or "qemu:" + m.name}"',
        "HK_BUILD_ID": f'"{build_id or default_build_id()}"',
        **(defines or {}),
    }
    flags = [*m.cpu_flags, *COMMON_FLAGS, *(f"-I{d}" for d in include_dirs)]
    flags += [f for d in system_include_dirs for f in ("-isystem", str(d))]
    flags += [_define_flag(k, v) for k, v in macro.items()]
    obj_dir = out.parent / f"{out.name}.obj"
    commands: list[Command] = []
    objects: list[str] = []
    seen: dict[str, int] = {}
    for src in sources:
        is_cxx = src.suffix in _CXX_SUFFIXES
        stem = src.stem
        seen[stem] = seen.get(stem, 0) + 1
        obj = obj_dir / (f"{stem}.o" if seen[stem] == 1 else f"{stem}_{seen[stem]}.o")
        objects.append(str(obj))
        commands.append(
            Command(
                [
                    ARM_GXX if is_cxx else ARM_GCC,
                    *flags,
                    *(CXX_FLAGS if is_cxx else C_FLAGS),
                    "-c",
                    str(src),
                    "-o",
                    str(obj),
                ],
                timeout=timeout,
                what=f"compiling {src.name} for {m.name}",
                hint=COMPILE_HINT if is_cxx else GCC_HINT,
            )
        )
    lib_args = [lib if isinstance(lib, str) else str(lib) for lib in libs]
    commands.append(
        Command(
            [
                ARM_GXX if cxx else ARM_GCC,
                *m.cpu_flags,
                *LINK_FLAGS,
                f"-L{fw / 'platform' / 'qemu'}",
                "-T",
                m.linker_script,
                f"-Wl,-Map={out.with_suffix('.map')}",
                *objects,
                *lib_args,
                "-o",
                str(partial_path(out)),
            ],
            timeout=timeout,
            what=f"linking {out.name} for {m.name}",
            hint=GXX_HINT if cxx else GCC_HINT,
        )
    )
    return m, commands


def build_qemu_firmware(
    machine: str,
    engine_sources: Sequence[Path],
    out: Path,
    *,
    include_dirs: Sequence[Path] = (),
    defines: Mapping[str, str | int | None] | None = None,
    libs: Sequence[Path | str] = (),
    board_name: str | None = None,
    build_id: str | None = None,
    dry_run: bool = False,
    log: Path | None = None,
    timeout: float = 600.0,
    system_include_dirs: Sequence[Path] = (),
    core_sources: Sequence[str] = CORE_SOURCES,
) -> QemuBuild:
    """Build the firmware ELF for ``machine`` (see :func:`build_commands` for the arguments).

    Raises:
        UserError: unknown machine or a missing engine source.
        ToolError: the cross compiler is missing or a step failed (the compiler's last lines).
    """
    m, commands = build_commands(
        machine,
        engine_sources,
        out,
        include_dirs=include_dirs,
        defines=defines,
        libs=libs,
        board_name=board_name,
        build_id=build_id,
        timeout=timeout,
        system_include_dirs=system_include_dirs,
        core_sources=core_sources,
    )
    result = QemuBuild(m, out, commands)
    if not dry_run:
        for src in engine_sources:
            if not Path(src).is_file():
                raise UserError(f"engine source {src} does not exist", hint="check the engine's file list")
        for tool in {c.argv[0] for c in commands}:
            if shutil.which(tool) is None:
                raise ToolError(f"{tool} is not installed", hint=GXX_HINT if tool == ARM_GXX else GCC_HINT)
        (out.parent / f"{out.name}.obj").mkdir(parents=True, exist_ok=True)
    try:
        for cmd in commands:
            run(cmd, dry_run=dry_run, log=log)
        if not dry_run:
            os.replace(partial_path(out), out)
    finally:
        partial_path(out).unlink(missing_ok=True)
    if not dry_run:
        result.sizes = elf_sizes(out, log=log)
    return result


def elf_sizes(elf: Path, log: Path | None = None) -> dict[str, int]:
    """text / data / bss bytes of an ELF (``arm-none-eabi-size``)."""
    res = run(Command([ARM_SIZE, str(elf)], timeout=60, what="arm-none-eabi-size", hint=GCC_HINT), log=log)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    numbers = re.findall(r"\d+", lines[-1]) if lines else []
    if len(numbers) < 3:
        raise ToolError(f"cannot read the sizes of {elf}: {res.stdout.strip()!r}", hint=GCC_HINT)
    return {"text": int(numbers[0]), "data": int(numbers[1]), "bss": int(numbers[2])}
