/*
 * fuzz_core.c - libFuzzer harness: arbitrary bytes into the firmware's link core (hk_core_feed),
 * with the fake engine and a discarding platform. Finds crashes, overflows and UB in the decoder
 * and dispatch (built with ASan/UBSan). `make fuzz` runs it.
 */
#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "../../firmware/core/hk_cobs.h"
#include "../../firmware/core/hk_core.h"
#include "../../firmware/core/hk_crc32.h"
#include "../../firmware/core/hk_platform.h"

extern int32_t g_fake_alloc_status;
static int s_ready;

size_t hk_platform_read(uint8_t *buf, size_t len) {
    (void)buf;
    (void)len;
    return 0;
}
size_t hk_platform_write(const uint8_t *buf, size_t len) {
    (void)buf;
    return len;
}
uint64_t hk_platform_micros(void) { return 0; }
const char *hk_platform_board(void) { return "fuzz"; }
const char *hk_platform_build_id(void) { return "fuzz"; }
void hk_platform_reset(void) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!s_ready) {
        hk_core_init();
        s_ready = 1;
    }
    if (size == 0) {
        return 0;
    }
    if ((data[0] & 1u) == 0u || size > 2048u) {
        hk_core_feed(data + 1, size - 1); /* raw bytes: framing, resync, NACK paths */
        return 0;
    }
    /* Framed: the rest is header + payload with a correct CRC and COBS, so the fuzzer reaches the
     * command handlers (length field, offsets, chunking, PERF bounds, HELLO negotiation...). */
    static uint8_t body[2048 + 4];
    static uint8_t wire[HK_COBS_MAX_ENCODED(2048 + 4) + 1];
    size_t n = size - 1;
    memcpy(body, data + 1, n);
    uint32_t crc = hk_crc32(0u, body, n);
    for (unsigned i = 0; i < 4u; i++) {
        body[n + i] = (uint8_t)(crc >> (8u * i));
    }
    size_t enc = hk_cobs_encode(body, n + 4, wire, sizeof wire - 1);
    wire[enc] = 0;
    hk_core_feed(wire, enc + 1);
    return 0;
}
