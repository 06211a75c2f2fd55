/*
 * hk_qemu_main.c - the hkdeploy firmware on an emulated Cortex-M (QEMU mps2-an386 / mps3-an547):
 * hk_platform.h on the CMSDK UART0, the link core's main loop, SysTick as the counter.
 *
 * Counter (hk_platform_cycles): SysTick from the processor clock (CLKSOURCE=1, reload 0xFFFFFF),
 * extended to 64 bits in software at every read and by its own interrupt once per 2^24 ticks. That
 * interrupt fires 2^24 ticks after the last read at the earliest, i.e. never inside an Invoke() the
 * counter can time (one Invoke() may last < 2^24 ticks).
 * Under `qemu-system-arm -icount shift=0` the virtual clock advances 1 ns per instruction, so the
 * count is proportional to instructions executed (1 tick = 40 instructions on an386's 25 MHz,
 * 31.25 on an547's 32 MHz) and the same on every run: HELLO labels it HK_COUNTER_EMU_TICKS.
 * It says nothing about the latency of an Apollo MCU.
 *
 * Build-time: HK_BOARD_NAME, HK_BUILD_ID (hkdeploy/platforms/qemu_build.py passes them).
 * With HK_APP_MLPERF=1 (and the firmware/dut sources instead of the link core) it is the MLPerf Tiny
 * DUT on UART0: HK_DUT_NAME, HK_DUT_MODEL_ID, HK_DUT_INPUT_MAX (staging buffer bytes, >= the model
 * input); timestamps are m-lap-us lines from the SysTick count (no GPIO: no energy mode here).
 */
#include <stdint.h>

#include "../../core/hk_platform.h"
#include "hk_qemu.h"
#ifndef HK_APP_MLPERF
#define HK_APP_MLPERF 0
#endif
#if HK_APP_MLPERF
#include "../../dut/hk_dut.h"
#ifndef HK_DUT_NAME
#define HK_DUT_NAME "hkdeploy-custom"
#endif
#ifndef HK_DUT_MODEL_ID
#define HK_DUT_MODEL_ID "custom"
#endif
#ifndef HK_DUT_INPUT_MAX
#error "HK_DUT_INPUT_MAX (the model's input bytes) is required for the DUT"
#endif
static uint8_t s_dut_input[HK_DUT_INPUT_MAX];
static const hk_dut_config_t s_dut_cfg = {HK_DUT_NAME, HK_DUT_MODEL_ID, 0, s_dut_input, sizeof s_dut_input};
void hk_dut_platform_timestamp_pin(int level) { (void)level; } /* no GPIO on the emulated boards */
#else
#include "../../core/hk_core.h"
#endif

#ifndef HK_BOARD_NAME
#define HK_BOARD_NAME "qemu:" HK_QEMU_MACHINE
#endif
#ifndef HK_BUILD_ID
#define HK_BUILD_ID "unknown"
#endif

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void hk_qemu_fault_init(void);

static uint32_t s_last_cvr;
static uint64_t s_ticks;

void hk_qemu_ticks_init(void) {
    SYST_CSR = 0u;
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0u;          /* any write clears it; it reloads on the next tick */
    SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* CLKSOURCE = processor clock, TICKINT, ENABLE */
    s_last_cvr = SYST_CVR;
    s_ticks = 0u;
}

static uint64_t ticks_locked(void) {
    const uint32_t now = SYST_CVR & 0x00FFFFFFu;
    s_ticks += (s_last_cvr - now) & 0x00FFFFFFu; /* a down-counter: elapsed = last - now (mod 2^24) */
    s_last_cvr = now;
    return s_ticks;
}

uint64_t hk_qemu_ticks(void) {
    __asm volatile("cpsid i" ::: "memory");
    const uint64_t t = ticks_locked();
    __asm volatile("cpsie i" ::: "memory");
    return t;
}

void hk_qemu_systick_isr(void) { (void)ticks_locked(); }

size_t hk_platform_read(uint8_t *buf, size_t len) { return hk_qemu_uart_read(buf, len); }

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    hk_qemu_uart_write(buf, len);
    return len;
}

uint64_t hk_platform_micros(void) { return hk_qemu_ticks() / (HK_QEMU_SYSCLK_HZ / 1000000u); }

const char *hk_platform_board(void) { return HK_BOARD_NAME; }

const char *hk_platform_build_id(void) { return HK_BUILD_ID; }

void hk_platform_reset(void) {} /* the core re-initialises link and engine state itself */

/* Restarts SysTick's tick grid at every read (writing CVR clears it; QEMU's timer then counts its
 * periods from that instant). Without this, an interval's count would depend on where the first
 * read fell between two ticks, which depends on how long the main loop polled the UART, and one
 * Invoke() would measure N or N+1 ticks. With it, the interval between two reads is counted from the
 * exact instant of the first: floor(instructions / instructions-per-tick), the same on every run.
 * The cost is under one tick per call, lost to hk_platform_micros(). */
uint32_t hk_platform_cycles(void) {
    __asm volatile("cpsid i" ::: "memory");
    const uint32_t total = (uint32_t)ticks_locked();
    SYST_CVR = 0u;
    s_last_cvr = 0u;
    __asm volatile("cpsie i" ::: "memory");
    return total;
}

uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_EMU_TICKS; }

#ifdef HK_QEMU_WATCHDOG_BASE
/* The hang guard around hk_engine_init (mps2-an386 only; the SSE-300 watchdogs of mps3-an547 were
 * not tried): the CMSDK watchdog counts HK_QEMU_INIT_WATCHDOG_TICKS of its 25 MHz clock, then raises
 * the NMI, which the fault handler reports, records and turns into a system reset (RESEN resets on a
 * second expiry, should the handler not run). Default 10 s of emulated time = 10^10 instructions
 * under -icount shift=0, far beyond any model's init; a build may pass a smaller value (the tests). */
#ifndef HK_QEMU_INIT_WATCHDOG_TICKS
#define HK_QEMU_INIT_WATCHDOG_TICKS 250000000u
#endif
#define WDOG_REG(off) (*(volatile uint32_t *)(HK_QEMU_WATCHDOG_BASE + (off)))
#define WDOG_LOAD WDOG_REG(0x000u)
#define WDOG_CONTROL WDOG_REG(0x008u) /* bit 0 INTEN (counts, interrupts), bit 1 RESEN */
#define WDOG_INTCLR WDOG_REG(0x00Cu)
#define WDOG_LOCK WDOG_REG(0xC00u)
#define WDOG_UNLOCK_KEY 0x1ACCE551u

void hk_platform_init_guard(int armed) {
    WDOG_LOCK = WDOG_UNLOCK_KEY;
    if (armed) {
        WDOG_LOAD = HK_QEMU_INIT_WATCHDOG_TICKS;
        WDOG_INTCLR = 1u;
        WDOG_CONTROL = 0x3u;
    } else {
        WDOG_CONTROL = 0u;
        WDOG_INTCLR = 1u;
    }
    WDOG_LOCK = 0u;
}
#endif

uint32_t hk_platform_counter_hz(void) { return HK_QEMU_SYSCLK_HZ; }

int main(void) {
    hk_qemu_fault_init();
    hk_qemu_uart_init();
    hk_qemu_ticks_init();
#if HK_APP_MLPERF
    hk_dut_init(&s_dut_cfg);
    hk_qemu_fault_report_previous(); /* m-log-[...] lines */
    for (;;) {
        hk_dut_poll();
    }
#else
    hk_core_init();
    hk_qemu_fault_report_previous();
    for (;;) {
        hk_core_poll(); /* SysTick's interrupt keeps the 64-bit count ahead of the 24-bit wrap */
    }
#endif
}
