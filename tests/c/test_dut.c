/*
 * test_dut.c - C unit tests of the MLPerf DUT front end (firmware/dut/hk_dut.c) with TEST DOUBLES of
 * the engine (float32 outputs the test sets) and of the platform (captured output, a settable
 * microsecond counter, a recorded timestamp pin). Expected text is written by hand.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/core/hk_platform.h"
#include "../../firmware/dut/hk_dut.h"
#include "../../firmware/engine/hk_engine.h"

/* ---- test double: engine ---- */
#define IN_BYTES 8u
#define N_OUT 13u
static uint8_t s_in[IN_BYTES];
static float s_outf[N_OUT];
static uint8_t s_seen[IN_BYTES]; /* input at the last invoke */
static int s_invokes;

int32_t hk_engine_init(hk_engine_info_t *info) {
    memset(info, 0, sizeof *info);
    info->input = (hk_tensor_info_t){HK_DTYPE_INT8, 2, {1, IN_BYTES, 0, 0, 0, 0}, 0.1f, 0, IN_BYTES};
    info->output = (hk_tensor_info_t){HK_DTYPE_FLOAT32, 2, {1, N_OUT, 0, 0, 0, 0}, 0.0f, 0, N_OUT * 4u};
    return HK_ENGINE_OK;
}
uint8_t *hk_engine_input(void) { return s_in; }
const uint8_t *hk_engine_output(void) { return (const uint8_t *)s_outf; }
int32_t hk_engine_invoke(uint32_t *cycles) {
    memcpy(s_seen, s_in, IN_BYTES);
    memset(s_in, 0xEE, IN_BYTES); /* like TFLM reusing the input buffer for later layers */
    s_invokes++;
    *cycles = 1u;
    return HK_ENGINE_OK;
}
void hk_engine_reset(void) {}

/* ---- test double: platform ---- */
static char s_cap[8192];
static size_t s_cap_len;
static uint64_t s_now = 5000000000123ull; /* past 2^32 us: a 32-bit counter would have wrapped */
static char s_pin_log[64];
static size_t s_pin_len;

size_t hk_platform_read(uint8_t *buf, size_t len) {
    (void)buf;
    (void)len;
    return 0u;
}
size_t hk_platform_write(const uint8_t *buf, size_t len) {
    if (s_cap_len + len < sizeof s_cap) {
        memcpy(s_cap + s_cap_len, buf, len);
        s_cap_len += len;
    }
    return len;
}
uint64_t hk_platform_micros(void) { return s_now++; }
const char *hk_platform_board(void) { return "test"; }
const char *hk_platform_build_id(void) { return "test"; }
void hk_platform_reset(void) {}
void hk_dut_platform_timestamp_pin(int level) {
    if (s_pin_len + 1u < sizeof s_pin_log) {
        s_pin_log[s_pin_len++] = level ? 'H' : 'L';
    }
}

static int s_failures;

static void send(const char *text) {
    s_cap_len = 0u;
    hk_dut_feed((const uint8_t *)text, strlen(text));
    s_cap[s_cap_len] = '\0';
}

static void expect(const char *what, const char *want) {
    if (strcmp(s_cap, want) != 0) {
        printf("FAIL %s\n  want: %s\n  got:  %s\n", what, want, s_cap);
        s_failures++;
    }
}

int main(void) {
    static uint8_t buf[IN_BYTES];
    hk_dut_config_t cfg = {"hkdeploy-t", "ad01", 0, buf, sizeof buf};
    s_cap_len = 0u;
    hk_dut_init(&cfg);
    s_cap[s_cap_len] = '\0';
    expect("boot", "m-timestamp-mode-performance\r\nm-lap-us-5000000000123\r\nm-init-done\r\nm-ready\r\n");

    const float values[N_OUT] = {1.0f, 0.1f, -0.5f, 0.0078125f, 0.0234375f, 123.456f, -0.0f, -1e-7f,
                                 16777216.0f, 1e13f, NAN, INFINITY, -INFINITY};
    memcpy(s_outf, values, sizeof values);
    send("db load 8%");
    expect("db load", "m-[Expecting 8 bytes]\r\nm-ready\r\n");
    send("db 01020304%db 05060708%");
    expect("db chunks", "m-ready\r\nm-load-done\r\nm-ready\r\n");
    send("infer 3 2%");
    expect("infer",
           "m-warmup-start-2\r\nm-warmup-done\r\nm-infer-start-3\r\nm-lap-us-5000000000124\r\n"
           "m-lap-us-5000000000125\r\nm-infer-done\r\n"
           "m-results-[1.000000,0.100000,-0.500000,0.007812,0.023438,123.456001,0.000000,-0.000000,"
           "16777216.000000,9999999827968.000000,nan,inf,-inf]\r\nm-ready\r\n");
    if (s_invokes != 5 || memcmp(s_seen, "\x01\x02\x03\x04\x05\x06\x07\x08", IN_BYTES) != 0) {
        printf("FAIL every invoke must see the loaded input (%d invokes)\n", s_invokes);
        s_failures++;
    }
    send("db load 9%");
    expect("db load overflow", "e-[db load 9: the model input is 8 bytes]\r\nm-ready\r\n");
    send("db 00%");
    expect("no load after overflow", "e-[No load in progress: send db load N first]\r\nm-ready\r\n");

    /* a buffer smaller than the model input: refused at boot, never written */
    static uint8_t small[4];
    hk_dut_config_t small_cfg = {"hkdeploy-t", "ad01", 0, small, sizeof small};
    s_cap_len = 0u;
    hk_dut_init(&small_cfg);
    s_cap[s_cap_len] = '\0';
    expect("small buffer boot",
           "m-timestamp-mode-performance\r\nm-lap-us-5000000000126\r\ne-[The model input does not fit the input "
           "buffer]\r\nm-init-done\r\nm-ready\r\n");
    send("db load 8%");
    expect("small buffer db load", "e-[db load 8: the model input is 8 bytes]\r\nm-ready\r\n");

    /* energy mode: GPIO edges instead of m-lap-us lines */
    hk_dut_config_t ecfg = {"hkdeploy-t", "kws01", 1, buf, sizeof buf};
    s_cap_len = 0u;
    s_pin_len = 0u;
    hk_dut_init(&ecfg);
    s_cap[s_cap_len] = '\0';
    expect("energy boot", "m-timestamp-mode-energy\r\nm-init-done\r\nm-ready\r\n");
    uint64_t before = s_now;
    send("timestamp%");
    expect("energy timestamp", "m-ready\r\n");
    s_pin_log[s_pin_len] = '\0';
    if (strcmp(s_pin_log, "LHLH") != 0 || s_now - before < 2u) {
        printf("FAIL energy pin sequence %s (held %llu ticks)\n", s_pin_log, (unsigned long long)(s_now - before));
        s_failures++;
    }
    printf("test_dut: %s\n", s_failures ? "FAILED" : "all passed");
    return s_failures ? 1 : 0;
}
