/*
 * fake_engine.c - TEST DOUBLE of hk_engine.h for the link-core tests (never in a firmware build).
 * Input: 300 int8 bytes. Output (4 bytes): [number of invokes so far, sum of input bytes mod 256,
 * first input byte, last input byte] -- so tests can tell a retried RUN from a second execution.
 * Invoke() is timed with the platform's counter (hk_platform_cycles), like the real engine.
 * g_fake_alloc_status sets the AllocateTensors status it reports (pipe_main: argv[1]).
 * Built with -DHK_FAKE_ENGINE_FAULTS=1 (the QEMU platform tests only), an input that starts with the
 * bytes "FAULT!" followed by a kind byte makes Invoke() fault on purpose, so the tests can show the
 * platform's fault handler reports over the link and recovers:
 *   kind 1: an undefined instruction (UsageFault UNDEFINSTR)
 *   kind 2: a load from an address with nothing behind it (BusFault, precise)
 *   kind 3: an integer division by zero (UsageFault DIVBYZERO; the platform traps it)
 * PROFILE / TENSOR: a model of FAKE_OPS operators (builtin codes k_fake_codes); each operator is timed
 * with two counter reads, the whole profile with one read before and one after them; operator k's
 * output is the 300 input bytes XOR k (tensor index 10 + k, int8). g_fake_features = 0 makes the
 * engine answer both as unsupported (HELLO then says so too).
 * Built with -DHK_FAKE_INIT_FAULT=1 (QEMU tests only), hk_engine_init itself executes an undefined
 * instruction every time: an engine whose AllocateTensors crashes (TFLM HardFaults on some bad arenas).
 * With -DHK_FAKE_INIT_HANG=1 it loops forever instead (the QEMU hang guard's test).
 * On the host (test_core.c), g_fake_init_hook is called inside hk_engine_init when set: the tests
 * longjmp out of it to play a crash that resets the device.
 * Never in a firmware build that talks to a user's board.
 */
#include <stdlib.h>
#include <string.h>

#include "../../firmware/core/hk_platform.h"
#include "../../firmware/engine/hk_engine.h"

#define IN_BYTES 300u
#define OUT_BYTES 4u

static uint8_t s_in[IN_BYTES];
static uint8_t s_out[OUT_BYTES];
static uint8_t s_invokes;
int32_t g_fake_alloc_status;
uint16_t g_fake_features = HK_ENGINE_FEATURE_PROFILE | HK_ENGINE_FEATURE_TENSOR;

#define FAKE_OPS 10u
const uint16_t k_fake_codes[FAKE_OPS] = {22, 3, 17, 3, 17, 4, 3, 3, 9, 25}; /* RESHAPE, CONV_2D, ... */
void (*g_fake_init_hook)(void);
unsigned g_fake_inits; /* hk_engine_init calls so far (the tests count skipped inits) */

int32_t hk_engine_init(hk_engine_info_t *info) {
    g_fake_inits++;
#if defined(HK_FAKE_INIT_FAULT) && HK_FAKE_INIT_FAULT
    __asm volatile("udf #1"); /* UsageFault (UNDEFINSTR) inside init, like a crashing AllocateTensors */
#endif
#if defined(HK_FAKE_INIT_HANG) && HK_FAKE_INIT_HANG
    for (;;) { /* an init that never returns (the platform's watchdog must end it) */
        __asm volatile("" ::: "memory");
    }
#endif
    if (g_fake_init_hook != NULL) {
        g_fake_init_hook();
    }
    memset(info, 0, sizeof *info);
    info->status = g_fake_alloc_status;
    info->arena_size = 4096u;
    info->arena_used = g_fake_alloc_status ? 0u : 3000u;
    info->model_size = 1234u;
    for (unsigned i = 0; i < 32u; i++) {
        info->model_sha256[i] = (uint8_t)i;
    }
    info->input = (hk_tensor_info_t){HK_DTYPE_INT8, 3, {1, IN_BYTES, 1, 0, 0, 0}, 0.05f, -3, IN_BYTES};
    info->output = (hk_tensor_info_t){HK_DTYPE_INT8, 2, {1, OUT_BYTES, 0, 0, 0, 0}, 0.00390625f, -128, OUT_BYTES};
    info->op_count = g_fake_alloc_status ? 0u : (uint16_t)FAKE_OPS;
    info->features = g_fake_alloc_status ? 0u : g_fake_features;
    s_invokes = 0;
    return info->status;
}

uint8_t *hk_engine_input(void) { return s_in; }

/* What a TFLM engine keeps from its reporter when init fails (the core repeats it on HELLO). */
const char g_fake_error_text[] = "Failed to allocate tail memory. Requested: 8736, available 5684, missing: 3052";

const char *hk_engine_error_text(void) { return g_fake_alloc_status ? g_fake_error_text : NULL; }

const uint8_t *hk_engine_output(void) { return s_out; }

#if defined(HK_FAKE_ENGINE_FAULTS) && HK_FAKE_ENGINE_FAULTS
#ifndef HK_FAKE_BAD_ADDRESS
#error "HK_FAKE_BAD_ADDRESS: an address with no memory or device behind it on this machine"
#endif
volatile int g_fake_divisor; /* 0: the compiler cannot fold the division away */

static void deliberate_fault(void) {
    if (memcmp(s_in, "FAULT!", 6) != 0) {
        return;
    }
    switch (s_in[6]) {
    case 1:
        __asm volatile("udf #0");
        break;
    case 2:
        (void)*(volatile uint32_t *)HK_FAKE_BAD_ADDRESS;
        break;
    case 3:
        g_fake_divisor = (int)s_in[7] / g_fake_divisor;
        break;
    default:
        break;
    }
}
#else
static void deliberate_fault(void) {}
#endif

int32_t hk_engine_invoke(uint32_t *cycles) {
    const uint32_t start = hk_platform_cycles();
    deliberate_fault();
    unsigned sum = 0;
    for (unsigned i = 0; i < IN_BYTES; i++) {
        sum += s_in[i];
    }
    s_invokes++;
    s_out[0] = s_invokes;
    s_out[1] = (uint8_t)sum;
    s_out[2] = s_in[0];
    s_out[3] = s_in[IN_BYTES - 1u];
    *cycles = hk_platform_cycles() - start;
    return HK_ENGINE_OK;
}

void hk_engine_reset(void) {}

int32_t hk_engine_profile(hk_op_cycles_t *ops, uint16_t max_ops, uint32_t *total) {
    if (!(g_fake_features & HK_ENGINE_FEATURE_PROFILE)) {
        return HK_ENGINE_ERR_UNSUPPORTED;
    }
    const uint32_t start = hk_platform_cycles();
    for (unsigned i = 0; i < FAKE_OPS; i++) {
        const uint32_t a = hk_platform_cycles();
        const uint32_t b = hk_platform_cycles();
        if (i < max_ops) {
            ops[i].builtin_code = k_fake_codes[i];
            ops[i].cycles = b - a;
        }
    }
    s_invokes++;
    *total = hk_platform_cycles() - start;
    return HK_ENGINE_OK;
}

int32_t hk_engine_capture(uint16_t op, uint32_t offset, uint8_t *dst, uint32_t *len, uint32_t *nbytes,
                          uint16_t *dtype, uint16_t *tensor_index) {
    if (!(g_fake_features & HK_ENGINE_FEATURE_TENSOR) || op >= FAKE_OPS) {
        return HK_ENGINE_ERR_UNSUPPORTED;
    }
    uint32_t n = offset < IN_BYTES ? IN_BYTES - offset : 0u;
    if (n > *len) {
        n = *len;
    }
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = (uint8_t)(s_in[offset + i] ^ op);
    }
    s_invokes++;
    *len = n;
    *nbytes = IN_BYTES;
    *dtype = HK_DTYPE_INT8;
    *tensor_index = (uint16_t)(10u + op);
    return HK_ENGINE_OK;
}
