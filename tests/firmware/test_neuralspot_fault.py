"""The neuralSPOT platform's fault handler (firmware/platform/neuralspot/src/hk_ns_fault.c), checked
without the SDK: it cross-compiles for Cortex-M4F and Cortex-M55, replaces the SDK startup's weak
fault handlers with strong ones, and keeps its record and the core's engine-init marker in a NOBITS
``.noinit`` section. Opt-in with ``NEURALSPOT_ROOT``: linked with the SDK's own linker scripts, that
section lands outside ``_sbss.._ebss`` (all the SDK's Reset_Handler zeroes). Whether the Apollo SRAM
keeps it across a SYSRESETREQ reset needs a real board (docs/firmware.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAULT_SRC = REPO / "firmware" / "platform" / "neuralspot" / "src" / "hk_ns_fault.c"
CPUS = {
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m55": ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
}
INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi"

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None, reason=f"needs arm-none-eabi-gcc: {INSTALL}"
)


def _run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True).stdout


def _symbols(path: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for line in _run("arm-none-eabi-nm", str(path)).splitlines():
        fields = line.split()
        if len(fields) == 3:
            out[fields[2]] = (int(fields[0], 16), fields[1])
    return out


@pytest.mark.parametrize("cpu", sorted(CPUS))
def test_fault_handler_compiles_and_keeps_its_ram_out_of_bss(cpu: str, tmp_path: Path) -> None:
    obj = tmp_path / "fault.o"
    _run(
        "arm-none-eabi-gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wconversion",
        "-Os", *CPUS[cpu], "-c", str(FAULT_SRC), "-o", str(obj),
    )  # fmt: skip
    sections = _run("arm-none-eabi-readelf", "-SW", str(obj))
    noinit = [line for line in sections.splitlines() if " .noinit " in line]
    assert noinit and "NOBITS" in noinit[0], sections  # startup code never copies or zeroes it
    syms = _symbols(obj)
    for handler in ("HardFault_Handler", "MemManage_Handler", "BusFault_Handler", "UsageFault_Handler"):
        assert syms[handler][1] == "T", f"{handler} must be strong to replace the SDK's weak one"
    assert syms["hk_platform_noinit_word"][1] == "T" and syms["hk_platform_fault_text"][1] == "T"


_SCRIPTS = {  # part -> (linker script under neuralspot/ns-core/src, cpu)
    "apollo3p": ("apollo3p/gcc/linker_script.ld", "cortex-m4"),
    "apollo4p": ("apollo4p/gcc/linker_script.ld", "cortex-m4"),
    "apollo510": ("apollo510/gcc/linker_script_nbl.ld", "cortex-m55"),
}
_STUB = """
#include <stdint.h>
extern uint32_t _sbss, _ebss;
void Reset_Handler(void);
void HardFault_Handler(void);
volatile uint32_t *hk_platform_noinit_word(void);
const char *hk_platform_fault_text(void);
uint32_t g_bss[64];
uint32_t g_data = 5;
__attribute__((section(".isr_vector"), used)) void (*const vectors[])(void) = {0, Reset_Handler, 0, HardFault_Handler};
void Reset_Handler(void) {
    for (volatile uint32_t *p = &_sbss; p < &_ebss; p++) *p = 0;
    (void)hk_platform_fault_text();
    *hk_platform_noinit_word() = g_bss[1] + g_data;
    for (;;) {}
}
"""


@pytest.mark.skipif(not os.environ.get("NEURALSPOT_ROOT"), reason="set NEURALSPOT_ROOT=/path/to/neuralSPOT")
@pytest.mark.parametrize("part", sorted(_SCRIPTS))
def test_noinit_lands_outside_what_the_sdk_startup_zeroes(part: str, tmp_path: Path) -> None:
    script_rel, cpu = _SCRIPTS[part]
    script = Path(os.environ["NEURALSPOT_ROOT"]) / "neuralspot" / "ns-core" / "src" / script_rel
    if not script.is_file():
        pytest.skip(f"{script} is not in this neuralSPOT tree")
    stub = tmp_path / "stub.c"
    stub.write_text(_STUB)
    axf = tmp_path / "fw.axf"
    _run(
        "arm-none-eabi-gcc", *CPUS[cpu], "-Os", "-nostartfiles", "-T", str(script), str(stub),
        str(FAULT_SRC), "-o", str(axf),
    )  # fmt: skip
    syms = _symbols(axf)
    sbss, ebss = syms["_sbss"][0], syms["_ebss"][0]
    for name in ("s_init_marker", "s_record"):
        addr = syms[name][0]
        assert not sbss <= addr < ebss, f"{part}: {name} at {addr:#x} is inside .bss [{sbss:#x}, {ebss:#x})"
