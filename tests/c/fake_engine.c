/*
 * fake_engine.c - TEST DOUBLE of hk_engine.h for the link-core tests (never in a firmware build).
 * Input: 300 int8 bytes. Output (4 bytes): [number of invokes so far, sum of input bytes mod 256,
 * first input byte, last input byte] -- so tests can tell a retried RUN from a second execution.
 * argv[1] (optional) sets the AllocateTensors status it reports.
 */
#include <stdlib.h>
#include <string.h>

#include "../../firmware/engine/hk_engine.h"

#define IN_BYTES 300u
#define OUT_BYTES 4u

static uint8_t s_in[IN_BYTES];
static uint8_t s_out[OUT_BYTES];
static uint8_t s_invokes;
int32_t g_fake_alloc_status;

int32_t hk_engine_init(hk_engine_info_t *info) {
    memset(info, 0, sizeof *info);
    info->status = g_fake_alloc_status;
    info->arena_size = 4096u;
    info->arena_used = g_fake_alloc_status ? 0u : 3000u;
    info->model_size = 1234u;
    for (unsigned i = 0; i < 32u; i++) {
        info->model_sha256[i] = (uint8_t)i;
    }
    info->cpu_hz = 96000000u;
    info->input = (hk_tensor_info_t){HK_DTYPE_INT8, 3, {1, IN_BYTES, 1, 0, 0, 0}, 0.05f, -3, IN_BYTES};
    info->output = (hk_tensor_info_t){HK_DTYPE_INT8, 2, {1, OUT_BYTES, 0, 0, 0, 0}, 0.00390625f, -128, OUT_BYTES};
    s_invokes = 0;
    return info->status;
}

uint8_t *hk_engine_input(void) { return s_in; }

const uint8_t *hk_engine_output(void) { return s_out; }

int32_t hk_engine_invoke(uint32_t *cycles) {
    unsigned sum = 0;
    for (unsigned i = 0; i < IN_BYTES; i++) {
        sum += s_in[i];
    }
    s_invokes++;
    s_out[0] = s_invokes;
    s_out[1] = (uint8_t)sum;
    s_out[2] = s_in[0];
    s_out[3] = s_in[IN_BYTES - 1u];
    *cycles = 96000u + (sum % 1000u);
    return HK_ENGINE_OK;
}

void hk_engine_reset(void) {}
