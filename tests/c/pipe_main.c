/*
 * pipe_main.c - runs the link core over stdin/stdout with the fake engine (TEST DOUBLE platform):
 * the Python tests talk to it with hkdeploy.link.framing exactly as to a board.
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../firmware/core/hk_core.h"
#include "../../firmware/core/hk_platform.h"

extern int32_t g_fake_alloc_status;

size_t hk_platform_read(uint8_t *buf, size_t len) {
    ssize_t n = read(0, buf, len);
    if (n <= 0) {
        exit(0); /* host closed the pipe */
    }
    return (size_t)n;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(1, buf + done, len - done);
        if (n <= 0) {
            exit(1);
        }
        done += (size_t)n;
    }
    return done;
}

uint64_t hk_platform_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *hk_platform_board(void) { return "test-double"; }

const char *hk_platform_build_id(void) { return "pipe"; }

void hk_platform_reset(void) {}
/* a fake counter: each read advances it 48,000 counts, so one Invoke() measures 48,000 (0.5 ms at the
 * 96 MHz it claims) and a test can tell the engine timed Invoke() with this hook */
uint32_t hk_platform_cycles(void) {
    static uint32_t now = 0xFFFF0000u; /* wraps during the first runs: the difference must not care */
    now += 48000u;
    return now;
}
uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_CPU_CYCLES; }
uint32_t hk_platform_counter_hz(void) { return 96000000u; }

int main(int argc, char **argv) {
    g_fake_alloc_status = argc > 1 ? atoi(argv[1]) : 0;
    hk_core_init();
    if (g_fake_alloc_status) {
        hk_core_log("fake engine: AllocateTensors failed");
    }
    for (;;) {
        hk_core_poll();
    }
}
