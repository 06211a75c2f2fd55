/*
 * fuzz_core.c - libFuzzer harness of the firmware's link core (hk_core_feed), built with ASan/UBSan
 * together with the fake engine (tests/c/fake_engine.c, a TEST DOUBLE) and the checking platform
 * below. `make fuzz` runs it (FUZZ_SECONDS).
 *
 * Input: byte 0 selects the mode, the rest is the traffic.
 *   bit 0 clear: raw bytes into the receiver (framing, resync, overflow, NACK paths);
 *   bit 0 set:   a sequence of requests [len u16][header+payload], each sealed with a correct CRC
 *                and COBS, so the fuzzer reaches the command handlers (HELLO negotiation, chunked
 *                RUN/SET_INPUT offsets, GET_OUTPUT, PERF bounds, retries, RESET...);
 *   bit 1 set:   the engine reports an AllocateTensors failure.
 * Every input starts from a fresh hk_core_init(), so each finding reproduces from its file alone.
 * Beyond crashes and UB, the platform checks what the device writes: every packet must decode, carry
 * a correct CRC and length, the RESPONSE or EVENT flag, and a payload within what the last HELLO
 * negotiated (LOG events within the protocol minimum).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../firmware/core/hk_cobs.h"
#include "../../firmware/core/hk_core.h"
#include "../../firmware/core/hk_crc32.h"
#include "../../firmware/core/hk_platform.h"
#include "../../firmware/protocol/hk_protocol.h"

#define BODY_CAP (HK_HEADER_SIZE + HK_MAX_PAYLOAD + HK_CRC_SIZE)

extern int32_t g_fake_alloc_status;

static uint8_t s_out[HK_COBS_MAX_ENCODED(BODY_CAP) + 1u];
static size_t s_out_len;
static size_t s_negotiated; /* payload size the device's own HELLO answers announced */

static void check_packet(const uint8_t *frame, size_t len) {
    static uint8_t body[HK_COBS_MAX_ENCODED(BODY_CAP)];
    long n = hk_cobs_decode(frame, len, body, sizeof body);
    if (n < (long)(HK_HEADER_SIZE + HK_CRC_SIZE)) {
        abort(); /* the device wrote something that is not a packet */
    }
    size_t b = (size_t)n - HK_CRC_SIZE;
    uint32_t crc = (uint32_t)body[b] | (uint32_t)body[b + 1] << 8 | (uint32_t)body[b + 2] << 16 |
                   (uint32_t)body[b + 3] << 24;
    size_t length = (size_t)body[6] | (size_t)body[7] << 8;
    if (hk_crc32(0u, body, b) != crc || length != b - HK_HEADER_SIZE || length > HK_MAX_PAYLOAD) {
        abort();
    }
    if ((body[1] & (HK_FLAG_RESPONSE | HK_FLAG_EVENT)) == 0u) {
        abort();
    }
    uint8_t type = body[0];
    uint16_t status = (uint16_t)(body[4] | body[5] << 8);
    if (type == HK_MSG_HELLO) { /* exempt from negotiation; it sets the size for what follows */
        if (status == HK_STATUS_OK) {
            s_negotiated = (size_t)body[10] | (size_t)body[11] << 8;
        }
    } else if (length > s_negotiated || ((body[1] & HK_FLAG_EVENT) && length > HK_MIN_PAYLOAD)) {
        abort(); /* an answer larger than the host agreed to receive */
    }
    if (type == HK_MSG_RESET && status == HK_STATUS_OK) {
        s_negotiated = HK_DEFAULT_PAYLOAD;
    }
}

size_t hk_platform_read(uint8_t *buf, size_t len) {
    (void)buf;
    (void)len;
    return 0;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == 0u) {
            check_packet(s_out, s_out_len);
            s_out_len = 0;
        } else if (s_out_len < sizeof s_out) {
            s_out[s_out_len++] = buf[i];
        } else {
            abort(); /* a packet longer than any the protocol allows */
        }
    }
    return len;
}

uint64_t hk_platform_micros(void) { return 0; }
const char *hk_platform_board(void) { return "fuzz"; }
const char *hk_platform_build_id(void) { return "fuzz"; }
void hk_platform_reset(void) {}
uint32_t hk_platform_cycles(void) { return 0u; }
uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_NONE; }
uint32_t hk_platform_counter_hz(void) { return 0u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) {
        return 0;
    }
    uint8_t mode = data[0];
    data++;
    size--;
    g_fake_alloc_status = (mode & 2u) ? 2 : 0;
    s_out_len = 0;
    s_negotiated = HK_DEFAULT_PAYLOAD;
    hk_core_init();
    if ((mode & 1u) == 0u) {
        hk_core_feed(data, size);
    } else {
        static uint8_t body[BODY_CAP + 64u];
        static uint8_t wire[HK_COBS_MAX_ENCODED(BODY_CAP + 64u) + 1u];
        while (size >= 2u) {
            size_t n = (size_t)data[0] | (size_t)data[1] << 8;
            data += 2;
            size -= 2;
            if (n > size) {
                n = size;
            }
            if (n > BODY_CAP) {
                n = BODY_CAP;
            }
            memcpy(body, data, n);
            data += n;
            size -= n;
            uint32_t crc = hk_crc32(0u, body, n);
            for (unsigned i = 0; i < 4u; i++) {
                body[n + i] = (uint8_t)(crc >> (8u * i));
            }
            size_t enc = hk_cobs_encode(body, n + 4u, wire, sizeof wire - 1u);
            wire[enc] = 0;
            hk_core_feed(wire, enc + 1u);
        }
    }
    if (s_out_len != 0u) {
        abort(); /* every write ends with a delimiter */
    }
    return 0;
}
