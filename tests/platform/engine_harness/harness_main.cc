/*
 * harness_main.cc - TEST DOUBLE of a platform + link core around the real TFLM engine
 * (firmware/engine/hk_engine_tflm.cc), for tests/platform/test_engine_qemu.py. Never in firmware.
 *
 * Reads int8 frames from HK_HARNESS_INPUTS (a host file, semihosting), runs hk_engine_invoke() on
 * each and writes the outputs to HK_HARNESS_OUTPUTS. Prints, one fact per line:
 *   INIT <status> <arena_size> <arena_used>      LOG <text> (what the engine sent to hk_core_log)
 *   ERRTEXT <hk_engine_error_text()>             T <frame> <SysTick ticks of the invoke>
 *   REINVOKE same|DIFFERS (frame 0 invoked again with no new input)    FRAMES <n>
 * SysTick counts the processor clock (CLKSOURCE=1); under `-icount shift=0` one instruction is one
 * virtual nanosecond, so instructions = ticks * 1e9 / SysTick rate (25 MHz an386, 32 MHz an547).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hk_engine.h"

extern "C" volatile uint32_t g_harness_systick_wraps;

namespace {
volatile uint32_t *const k_syst_csr = reinterpret_cast<volatile uint32_t *>(0xE000E010u);
volatile uint32_t *const k_syst_rvr = reinterpret_cast<volatile uint32_t *>(0xE000E014u);
volatile uint32_t *const k_syst_cvr = reinterpret_cast<volatile uint32_t *>(0xE000E018u);

uint64_t ticks() {
    uint32_t wraps, value;
    do {
        wraps = g_harness_systick_wraps;
        value = *k_syst_cvr;
    } while (wraps != g_harness_systick_wraps);
    return static_cast<uint64_t>(wraps) * 0x1000000u + (0xFFFFFFu - value);
}

hk_engine_info_t s_info;
uint8_t s_frame[HK_HARNESS_IN_BYTES];
uint8_t s_first[64];
} // namespace

extern "C" uint32_t hk_platform_cycles(void) { return static_cast<uint32_t>(ticks()); }
extern "C" uint8_t hk_platform_counter_kind(void) { return 3u; }
extern "C" uint32_t hk_platform_counter_hz(void) { return 0u; }
extern "C" void hk_core_log(const char *text) { printf("LOG %s\n", text); }
/* An engine without an error text (as before issue 11's fixes) links too. */
extern "C" __attribute__((weak)) const char *hk_engine_error_text(void) { return nullptr; }

int main() {
    *k_syst_rvr = 0xFFFFFFu;
    *k_syst_cvr = 0u;
    *k_syst_csr = 7u; /* processor clock, wrap interrupt, enabled */
    int32_t st = hk_engine_init(&s_info);
    printf("INIT %ld %lu %lu\n", static_cast<long>(st), static_cast<unsigned long>(s_info.arena_size),
           static_cast<unsigned long>(s_info.arena_used));
    const char *why = hk_engine_error_text();
    printf("ERRTEXT %s\n", why != nullptr ? why : "");
    if (st != 0) {
        return 3;
    }
    FILE *in = fopen(HK_HARNESS_INPUTS, "rb");
    FILE *out = fopen(HK_HARNESS_OUTPUTS, "wb");
    if (in == nullptr || out == nullptr || s_info.output.bytes > sizeof s_first) {
        printf("FILES\n");
        return 4;
    }
    int n = 0;
    while (fread(s_frame, 1, sizeof s_frame, in) == sizeof s_frame) {
        memcpy(hk_engine_input(), s_frame, sizeof s_frame);
        uint32_t cycles = 0u;
        const uint64_t t0 = ticks();
        st = hk_engine_invoke(&cycles);
        const uint64_t t1 = ticks();
        if (st != 0) {
            printf("INVOKE %ld\n", static_cast<long>(st));
            return 5;
        }
        fwrite(hk_engine_output(), 1, s_info.output.bytes, out);
        printf("T %d %llu\n", n, static_cast<unsigned long long>(t1 - t0));
        if (n == 0) {
            memcpy(s_first, hk_engine_output(), s_info.output.bytes);
            (void)hk_engine_invoke(&cycles);
            printf("REINVOKE %s\n", memcmp(s_first, hk_engine_output(), s_info.output.bytes) ? "DIFFERS" : "same");
        }
        n++;
    }
    fclose(out);
    fclose(in);
    printf("FRAMES %d\n", n);
    return 0;
}
