"""An engine whose init crashes, on real 32-bit Arm code: the link still comes up (issue #11, defect 4).

The engine is tests/c/fake_engine.c (a TEST DOUBLE) built with ``HK_FAKE_INIT_FAULT=1``: its
hk_engine_init executes an undefined instruction every time, as TFLM's AllocateTensors HardFaults on
some bad arenas or models. Without the core's boot marker the QEMU platform's fault handler resets,
the next boot faults again, and HELLO is never answered (a reset loop); on a board it just dies.
With it, the boot after the fault skips the init, HELLO answers with alloc_status ENGINE_INIT_FAULT
and the fault's kind and PC as LOG lines, and RESET (or the reset button) tries the init once more.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hkdeploy.errors import DeviceError
from hkdeploy.link import protocol as p
from hkdeploy.link.client import DeviceClient, DeviceStatusError, Timeouts
from hkdeploy.paths import firmware_dir
from hkdeploy.platforms.qemu_build import MACHINES, build_commands, build_qemu_firmware
from hkdeploy.platforms.qemu_process import QemuBoard
from tests.platform.qemu_support import (
    FAKE_ENGINE,
    build_fake_elfs,
    fake_engine_defines,
    needs_qemu,
    qemu_processes_running,
    running_boards,
)

pytestmark = needs_qemu

IN_BYTES = 300
REASON = "engine init crashed on the previous boot: not retried"
FAULT = "init fault: UsageFault (UNDEFINSTR) PC=0x"


@pytest.fixture(scope="module")
def fault_elfs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """machine -> ELF of the link core + QEMU platform + a fake engine whose init faults."""
    return build_fake_elfs(
        tmp_path_factory.mktemp("qemu-initfault-fw"), "hk_initfault", "test-init-fault", HK_FAKE_INIT_FAULT=1
    )


@pytest.fixture(scope="module")
def fault_boards(
    fault_elfs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, QemuBoard]]:
    with running_boards(fault_elfs, tmp_path_factory.mktemp("qemu-initfault-logs")) as boards:
        yield boards


def _engine_init_range(elf: Path) -> tuple[int, int]:
    """[start, end) of hk_engine_init in the ELF, from the symbol table (not from the firmware)."""
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        pytest.skip("needs arm-none-eabi-nm: apt-get install binutils-arm-none-eabi")
    out = subprocess.run([nm, "-S", str(elf)], capture_output=True, text=True, timeout=30, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[3] == "hk_engine_init":
            start = int(fields[0], 16) & ~1
            return start, start + int(fields[1], 16)
    raise AssertionError(f"no hk_engine_init in {elf}")


def _fault_pc(logs: list[str]) -> int:
    line = next(line for line in logs if line.startswith(FAULT))
    return int(line[len(FAULT) - 2 :].split()[0], 16)


def _hello_after_reboot(dev: DeviceClient) -> p.HelloResponse:
    """HELLO while the board may still be faulting and rebooting (bounded: a few tries)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return dev.hello()
        except DeviceError:
            if time.monotonic() > deadline:
                raise


def _wait_for_log(dev: DeviceClient, prefix: str, after: int) -> None:
    deadline = time.monotonic() + 5
    while not any(line.startswith(prefix) for line in list(dev.logs)[after:]):
        assert time.monotonic() < deadline, list(dev.logs)
        time.sleep(0.05)  # the client's reader thread collects LOG events


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_hello_answers_despite_an_engine_init_that_faults(
    fault_boards: dict[str, QemuBoard], fault_elfs: dict[str, Path], machine: str
) -> None:
    board = fault_boards[machine]
    start, end = _engine_init_range(fault_elfs[machine])
    with DeviceClient(board.url, timeouts=Timeouts(packet=1.0, command=10.0, retries=2)) as dev:
        # power-on: init faults, the handler resets, the next boot skips init and the link comes up
        info = _hello_after_reboot(dev)
        assert info.alloc_status == p.Status.ENGINE_INIT_FAULT == 9
        assert info.board == f"qemu:{machine}" and info.build_id == "test-init-fault"
        assert REASON in dev.logs, list(dev.logs)
        assert start <= _fault_pc(list(dev.logs)) < end  # the LOG names the fault, inside the init
        # nothing runs on an engine that never initialised (sent raw: the client itself would refuse
        # a RUN for an input HELLO describes as 0 bytes)
        for msg, payload in (
            (p.MsgType.RUN, p.RunRequest(0, bytes(IN_BYTES)).pack()),
            (p.MsgType.INVOKE, b""),
        ):
            with pytest.raises(DeviceStatusError) as refused:
                dev.request(msg, payload)
            assert refused.value.status == p.Status.ENGINE_NOT_READY
        # what validate and demo stop with (check_ready): one line with the status text, the fault, a hint
        with pytest.raises(DeviceError) as not_ready:
            dev.check_ready(None)
        assert "crashed during initialisation" in str(not_ready.value) and "UNDEFINSTR" in str(
            not_ready.value
        )
        assert "; arena" not in str(not_ready.value)  # no arena: the engine never reported one
        assert not_ready.value.hint and "RESET" in not_ready.value.hint

        # RESET retries the init: answered first, then the init faults again (the handler's LOG),
        # the board resets, and HELLO still answers
        seen = len(dev.logs)
        dev.reset()
        _wait_for_log(dev, "fault: UsageFault (UNDEFINSTR) PC=0x", seen)
        info = _hello_after_reboot(dev)
        assert info.alloc_status == p.Status.ENGINE_INIT_FAULT
        assert start <= _fault_pc(list(dev.logs)[seen:]) < end
        assert dev.stats_device().inits == 1  # a fresh boot (the fault's system reset), not a soft one

        # the reset button retries too (the skipped boot cleared the marker) and ends the same way
        seen = len(dev.logs)
        board.press_reset()
        _wait_for_log(dev, "reset after a fault: UsageFault", seen)
        assert _hello_after_reboot(dev).alloc_status == p.Status.ENGINE_INIT_FAULT


def _guarded_elf(tmp_path: Path, name: str, hang: bool) -> Path:
    defines = {
        **fake_engine_defines("mps2-an386"),
        # 250 k ticks of the 25 MHz watchdog clock = 10^7 instructions under -icount shift=0
        "HK_QEMU_INIT_WATCHDOG_TICKS": "250000u",
        "HK_FAKE_INIT_HANG": int(hang),
    }
    build = build_qemu_firmware(
        "mps2-an386", [FAKE_ENGINE], tmp_path / f"{name}.elf", defines=defines, build_id="test-init-guard"
    )
    return build.elf


def test_an_init_that_hangs_is_ended_by_the_watchdog(tmp_path: Path) -> None:
    """mps2-an386's CMSDK watchdog guards the init: a hang becomes an NMI, recorded, reset, status 9;
    after an init that returns the guard is off."""
    machine = "mps2-an386"
    hang = _guarded_elf(tmp_path, "hk_inithang", hang=True)
    start, end = _engine_init_range(hang)
    with QemuBoard(hang, machine, log_path=tmp_path / "qemu-hang.log") as board:
        with DeviceClient(board.url, timeouts=Timeouts(packet=1.0, command=10.0, retries=2)) as dev:
            info = _hello_after_reboot(dev)
            assert info.alloc_status == p.Status.ENGINE_INIT_FAULT
            assert REASON in dev.logs, list(dev.logs)
            line = next(line for line in dev.logs if line.startswith("init fault: "))
            assert line.startswith("init fault: NMI PC=0x"), line  # the watchdog's interrupt
            assert start <= int(line.split("PC=")[1].split()[0], 16) < end  # stopped inside the init
    fine = _guarded_elf(tmp_path, "hk_initguard", hang=False)
    with QemuBoard(fine, machine, log_path=tmp_path / "qemu-fine.log") as board:
        with DeviceClient(board.url, timeouts=Timeouts(packet=1.0, command=10.0, retries=2)) as dev:
            assert dev.hello().alloc_status == 0
            # the guard was disarmed when the init returned: the board polls far past 10^7
            # instructions (QEMU runs well over 5 M instructions/s) without a watchdog reset
            seen, before = len(dev.logs), dev.stats_device()
            time.sleep(2.0)
            after = dev.stats_device()
            assert after.inits == 1 and after.frames_ok == before.frames_ok + 1  # no reboot since
            assert list(dev.logs)[seen:] == []
    assert not qemu_processes_running(str(tmp_path))


# The emulated board's fault vectors go to hk_qemu_fault_entry; here they reach the neuralSPOT
# handler instead, with the fault exceptions left disabled as on an Apollo (they escalate to HardFault).
_NS_SHIM = """
void hk_qemu_fault_init(void);
void hk_qemu_fault_report_previous(void);
void hk_qemu_fault_entry(void);
void hk_qemu_fault_init(void) {}
void hk_qemu_fault_report_previous(void) {}
__attribute__((naked)) void hk_qemu_fault_entry(void) { __asm volatile("b HardFault_Handler"); }
"""


def _elf_with_the_neuralspot_fault_handler(machine: str, out: Path) -> Path:
    """The init-fault firmware with platform/neuralspot/src/hk_ns_fault.c in place of the QEMU
    platform's fault handler (the production build's commands, one source swapped, a shim added)."""
    shim = out.parent / "ns_shim.c"
    shim.write_text(_NS_SHIM)
    ns_fault = firmware_dir() / "platform" / "neuralspot" / "src" / "hk_ns_fault.c"
    defines = {**fake_engine_defines(machine), "HK_FAKE_INIT_FAULT": 1}
    _, commands = build_commands(machine, [FAKE_ENGINE], out, defines=defines, build_id="test-ns-fault")
    swapped = []
    for cmd in commands:
        argv = list(cmd.argv)
        if any(a.endswith("hk_qemu_fault.c") for a in argv):
            i = next(i for i, a in enumerate(argv) if a.endswith("hk_qemu_fault.c"))
            argv[i] = str(ns_fault)
            shim_argv = list(argv)
            shim_argv[i] = str(shim)
            shim_argv[shim_argv.index("-o") + 1] = str(out.parent / "ns_shim.o")
            swapped.append(dataclasses.replace(cmd, argv=shim_argv))
        elif "-T" in argv:  # the link: add the shim's object
            argv.insert(argv.index("-o"), str(out.parent / "ns_shim.o"))
        swapped.append(dataclasses.replace(cmd, argv=argv))
    (out.parent / f"{out.name}.obj").mkdir(parents=True, exist_ok=True)
    for cmd in swapped:
        subprocess.run(cmd.argv, check=True, capture_output=True, timeout=cmd.timeout)
    link_out = Path(swapped[-1].argv[swapped[-1].argv.index("-o") + 1])
    link_out.replace(out)
    return out


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_the_neuralspot_fault_handler_gives_the_same_on_the_emulated_cores(
    machine: str, tmp_path: Path
) -> None:
    """hk_ns_fault.c on an emulated Cortex-M4F / M55: it records the fault, resets by SYSRESETREQ, and
    the next boot answers HELLO with status 9 and its record. (What QEMU cannot say: whether an
    Apollo's SRAM keeps .noinit across that reset.)"""
    elf = _elf_with_the_neuralspot_fault_handler(machine, tmp_path / "hk_nsfault.elf")
    start, end = _engine_init_range(elf)
    with QemuBoard(elf, machine, log_path=tmp_path / "qemu.log") as board:
        with DeviceClient(board.url, timeouts=Timeouts(packet=1.0, command=10.0, retries=2)) as dev:
            info = _hello_after_reboot(dev)
            assert info.alloc_status == p.Status.ENGINE_INIT_FAULT
            assert REASON in dev.logs, list(dev.logs)
            line = next(line for line in dev.logs if line.startswith("init fault: "))
            # escalated to HardFault; CFSR still names the cause (UNDEFINSTR, bit 16)
            assert line.startswith("init fault: HardFault PC=0x") and line.endswith(" CFSR=0x00010000"), line
            assert start <= int(line.split("PC=")[1].split()[0], 16) < end
            dev.reset()  # RESET retries: faults again, the board resets, HELLO answers 9 again
            assert _hello_after_reboot(dev).alloc_status == p.Status.ENGINE_INIT_FAULT
            assert dev.stats_device().inits == 1
    assert not qemu_processes_running(str(tmp_path))
