/*
 * hk_platform.h - what the link core needs from a platform (board or host port).
 *
 * Implemented by platform/neuralspot (ns-usb CDC or ns-uart), platform/host (a pty) and
 * platform/qemu (a CMSDK UART of QEMU's mps2-an386 / mps3-an547).
 * All functions are non-blocking or bounded; the core never waits forever.
 */
#ifndef HK_PLATFORM_H
#define HK_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read up to len bytes that have arrived; returns the count (0 if none). Never blocks long. */
size_t hk_platform_read(uint8_t *buf, size_t len);

/* Write len bytes to the link; returns the count written (blocks at most until the link drains). */
size_t hk_platform_write(const uint8_t *buf, size_t len);

/* Monotonic microseconds, for timeouts. */
uint64_t hk_platform_micros(void);

/* Board name reported in HELLO (e.g. "apollo4p_evb"; "sim:apollo4p_evb" for the host port). */
const char *hk_platform_board(void);

/* Firmware build id reported in HELLO (git sha / build hash; never a timestamp). */
const char *hk_platform_build_id(void);

/* Soft reset requested by the host (RESET): re-initialise engine and link state. */
void hk_platform_reset(void);

/* Optional (the core has weak defaults returning NULL): memory that survives a system reset.
 *
 * hk_platform_noinit_word: one 32-bit word in RAM that a reset (a fault handler's system reset, the
 * reset button, a watchdog) leaves as it was and startup code never clears (.noinit / NOLOAD). The
 * core sets a marker there before hk_engine_init and clears it after: a boot that finds it set knows
 * the previous boot died inside the engine's init and does not run it again (HELLO reports
 * ENGINE_INIT_FAULT, the link stays up); a host RESET tries once more. NULL: no such memory (the
 * core then always runs init). Its content after power-on is arbitrary; the core uses a 32-bit magic.
 *
 * hk_platform_fault_text: one line describing the fault that reset the device (e.g. "UsageFault
 * (UNDEFINSTR) PC=0x000012a4"), at least while hk_core_init() runs at boot; NULL if none is known. */
volatile uint32_t *hk_platform_noinit_word(void);
const char *hk_platform_fault_text(void);

/* Optional (weak default: nothing): armed = 1 just before hk_engine_init, 0 after it returns. A
 * platform with a watchdog resets the device when the init hangs instead of faulting; the marker
 * above then makes the next boot report ENGINE_INIT_FAULT too. */
void hk_platform_init_guard(int armed);

/* What hk_platform_cycles() counts; HELLO reports it (counter_kind) so the host labels timings
 * truthfully. Numbers are wire values: keep them in step with spec.yaml (HELLO.counter_kind). */
typedef enum {
    HK_COUNTER_NONE = 0,       /* no counter: cycles are always 0 */
    HK_COUNTER_CPU_CYCLES = 1, /* core clock cycles of the real MCU (DWT CYCCNT on M4, PMU on M55) */
    HK_COUNTER_HOST_NS = 2,    /* nanoseconds of host time (the virtual EVB): not the board's latency */
    HK_COUNTER_EMU_TICKS = 3   /* SysTick ticks of an emulated Cortex-M under QEMU -icount:
                                  proportional to instructions executed, never Apollo latency */
} hk_counter_kind_t;

/* A free-running 32-bit count for timing Invoke() (the engine calls it before and after; the
 * unsigned difference is the duration, so it may wrap once). 0 when the kind is HK_COUNTER_NONE. */
uint32_t hk_platform_cycles(void);

/* The kind of hk_platform_cycles() (an hk_counter_kind_t). */
uint8_t hk_platform_counter_kind(void);

/* Counts per second of hk_platform_cycles() (turns counts into microseconds; 0 if unknown). */
uint32_t hk_platform_counter_hz(void);

#ifdef __cplusplus
}
#endif

#endif /* HK_PLATFORM_H */
