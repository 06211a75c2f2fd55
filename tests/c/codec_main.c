/*
 * codec_main.c - the firmware's COBS + CRC-32 codec as a filter, for the C <-> Python cross test
 * (tests/link/test_framing_cross.py). Reads a byte stream on stdin, splits it at delimiters, decodes
 * each frame with hk_cobs_decode and checks its CRC with hk_crc32; every valid packet is encoded again
 * from its header and payload by the C encoder (new CRC, new COBS) and written to stdout. Damaged
 * frames are dropped and counted; the count goes to stderr as "dropped N".
 */
#include <stdio.h>
#include <stdlib.h>

#include "../../firmware/core/hk_cobs.h"
#include "../../firmware/core/hk_crc32.h"

#define FRAME_MAX 70000u

static uint8_t s_frame[FRAME_MAX];
static uint8_t s_body[FRAME_MAX];
static uint8_t s_wire[HK_COBS_MAX_ENCODED(FRAME_MAX) + 1u];

/* 1 if the frame was a valid packet (and was written again), 0 if dropped. */
static int relay(size_t len) {
    long n = hk_cobs_decode(s_frame, len, s_body, sizeof s_body);
    if (n < 12) {
        return 0;
    }
    size_t body = (size_t)n - 4u;
    uint32_t crc = (uint32_t)s_body[body] | (uint32_t)s_body[body + 1] << 8 | (uint32_t)s_body[body + 2] << 16 |
                   (uint32_t)s_body[body + 3] << 24;
    size_t length = (size_t)s_body[6] | (size_t)s_body[7] << 8;
    if (hk_crc32(0u, s_body, body) != crc || length != body - 8u) {
        return 0;
    }
    crc = hk_crc32(0u, s_body, body); /* re-sealed by the C side */
    for (unsigned i = 0; i < 4u; i++) {
        s_body[body + i] = (uint8_t)(crc >> (8u * i));
    }
    size_t enc = hk_cobs_encode(s_body, body + 4u, s_wire, sizeof s_wire - 1u);
    s_wire[enc] = 0u;
    return fwrite(s_wire, 1, enc + 1u, stdout) == enc + 1u;
}

int main(void) {
    size_t len = 0;
    int overflow = 0;
    unsigned long dropped = 0;
    int c;
    while ((c = getchar()) != EOF) {
        if (c == 0) {
            if (overflow || (len > 0u && !relay(len))) {
                dropped++;
            }
            len = 0;
            overflow = 0;
        } else if (len < FRAME_MAX) {
            s_frame[len++] = (uint8_t)c;
        } else {
            overflow = 1;
        }
    }
    fprintf(stderr, "dropped %lu\n", dropped);
    return fflush(stdout) == 0 ? 0 : 1;
}
