/*
 * fuzz_core.c - libFuzzer harness: arbitrary bytes into the firmware's link core (hk_core_feed),
 * with the fake engine and a discarding platform. Finds crashes, overflows and UB in the decoder
 * and dispatch (built with ASan/UBSan). `make fuzz` runs it.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../firmware/core/hk_core.h"
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
    hk_core_feed(data, size);
    return 0;
}
