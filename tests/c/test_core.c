/*
 * test_core.c - C unit tests of the firmware link core, run by `make ctest` (gcc, ASan + UBSan).
 *
 * Links the real core (every .c of firmware/core) with two TEST DOUBLES: fake_engine.c (hk_engine.h) and
 * the capturing platform below (hk_platform.h: writes go to a buffer the tests parse). Expected
 * values come from the COBS paper / CRC-32 check value and from the protocol spec, never from the
 * code under test.
 */
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "../../firmware/core/hk_cobs.h"
#include "../../firmware/core/hk_core.h"
#include "../../firmware/core/hk_crc32.h"
#include "../../firmware/core/hk_platform.h"
#include "../../firmware/protocol/hk_protocol.h"

extern int32_t g_fake_alloc_status;
extern const char g_fake_error_text[];
extern uint16_t g_fake_features;
extern const uint16_t k_fake_codes[];
extern void (*g_fake_init_hook)(void);
extern unsigned g_fake_inits;

static int s_failures;
static int s_checks;

#define CHECK(cond)                                                                                               \
    do {                                                                                                          \
        s_checks++;                                                                                               \
        if (!(cond)) {                                                                                            \
            s_failures++;                                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                             \
        }                                                                                                         \
    } while (0)

/* ---- capturing platform (test double) ------------------------------------------------------- */
static uint8_t s_out[1 << 16];
static size_t s_out_len;
static int s_platform_resets;

size_t hk_platform_read(uint8_t *buf, size_t len) {
    (void)buf;
    (void)len;
    return 0u;
}
size_t hk_platform_write(const uint8_t *buf, size_t len) {
    if (s_out_len + len <= sizeof s_out) {
        memcpy(s_out + s_out_len, buf, len);
        s_out_len += len;
    }
    return len;
}
uint64_t hk_platform_micros(void) { return 0u; }
const char *hk_platform_board(void) { return "a-board-name-longer-than-24-bytes"; }
const char *hk_platform_build_id(void) { return "unit"; }
void hk_platform_reset(void) { s_platform_resets++; }
/* a fake counter: each read advances it 48,000 counts, so one Invoke() measures 48,000 (0.5 ms at the
 * 96 MHz it claims) and a test can tell the engine timed Invoke() with this hook */
uint32_t hk_platform_cycles(void) {
    static uint32_t now = 0xFFFF0000u; /* wraps during the first runs: the difference must not care */
    now += 48000u;
    return now;
}
uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_CPU_CYCLES; }
/* reset-surviving RAM: off (NULL, like the core's weak default) unless a test turns it on */
static volatile uint32_t s_noinit;
static int s_have_noinit;
static const char *s_fault_text;
volatile uint32_t *hk_platform_noinit_word(void) { return s_have_noinit ? &s_noinit : NULL; }
const char *hk_platform_fault_text(void) { return s_fault_text; }
uint32_t hk_platform_counter_hz(void) { return 96000000u; }

/* ---- helpers: build requests, parse answers (independent little codec for the tests) --------- */
typedef struct {
    uint8_t type, flags;
    uint16_t seq, status, length;
    uint8_t payload[2048];
} packet_t;

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }

static size_t make_packet(uint8_t *wire, uint8_t type, uint8_t flags, uint16_t seq, const void *payload,
                          size_t len) {
    static uint8_t body[4096];
    body[0] = type;
    body[1] = flags;
    body[2] = (uint8_t)seq;
    body[3] = (uint8_t)(seq >> 8);
    body[4] = body[5] = 0;
    body[6] = (uint8_t)len;
    body[7] = (uint8_t)(len >> 8);
    if (len > 0u) {
        memcpy(body + 8, payload, len);
    }
    uint32_t crc = hk_crc32(0u, body, 8 + len);
    for (int i = 0; i < 4; i++) {
        body[8 + len + (size_t)i] = (uint8_t)(crc >> (8 * i));
    }
    size_t n = hk_cobs_encode(body, 12 + len, wire, 8192);
    wire[n] = 0;
    return n + 1;
}

static void send(uint8_t type, uint8_t flags, uint16_t seq, const void *payload, size_t len) {
    static uint8_t wire[8192];
    size_t n = make_packet(wire, type, flags, seq, payload, len);
    hk_core_feed(wire, n);
}

/* Parses every packet written since the last call; returns how many (up to max). */
static int take(packet_t *out, int max) {
    int count = 0;
    size_t start = 0;
    static uint8_t body[8192];
    for (size_t i = 0; i < s_out_len; i++) {
        if (s_out[i] != 0) {
            continue;
        }
        long n = hk_cobs_decode(s_out + start, i - start, body, sizeof body);
        start = i + 1;
        CHECK(n >= 12);
        if (n < 12 || count >= max) {
            continue;
        }
        CHECK(hk_crc32(0u, body, (size_t)n - 4) == rd32(body + n - 4));
        packet_t *p = &out[count++];
        p->type = body[0];
        p->flags = body[1];
        p->seq = rd16(body + 2);
        p->status = rd16(body + 4);
        p->length = rd16(body + 6);
        CHECK(p->length == (size_t)n - 12);
        memcpy(p->payload, body + 8, p->length);
    }
    CHECK(start == s_out_len); /* every answer ends with the delimiter */
    s_out_len = 0;
    return count;
}

static void hello(uint16_t host_max, packet_t *rsp) {
    uint8_t req[4] = {(uint8_t)host_max, (uint8_t)(host_max >> 8), HK_PROTOCOL_VERSION, 0};
    send(HK_MSG_HELLO, 0, 1, req, sizeof req);
    CHECK(take(rsp, 1) == 1);
}

static void boot(int32_t alloc_status) {
    g_fake_alloc_status = alloc_status;
    hk_core_init();
    s_out_len = 0;
}

/* ---- tests ------------------------------------------------------------------------------------ */
static void test_crc32(void) {
    CHECK(hk_crc32(0u, (const uint8_t *)"123456789", 9) == 0xCBF43926u); /* the CRC-32 check value */
    CHECK(hk_crc32(0u, (const uint8_t *)"", 0) == 0u);
    /* incremental == one shot */
    CHECK(hk_crc32(hk_crc32(0u, (const uint8_t *)"1234", 4), (const uint8_t *)"56789", 5) == 0xCBF43926u);
}

static int cobs_case(const uint8_t *in, size_t len, const uint8_t *expect, size_t expect_len) {
    uint8_t enc[600], dec[600];
    size_t n = hk_cobs_encode(in, len, enc, sizeof enc);
    long m = hk_cobs_decode(enc, n, dec, sizeof dec);
    return n == expect_len && memcmp(enc, expect, n) == 0 && m == (long)len && memcmp(dec, in, len) == 0;
}

static void test_cobs_vectors(void) {
    /* the examples of Cheshire & Baker / Wikipedia */
    CHECK(cobs_case((const uint8_t *)"\x00", 1, (const uint8_t *)"\x01\x01", 2));
    CHECK(cobs_case((const uint8_t *)"\x00\x00", 2, (const uint8_t *)"\x01\x01\x01", 3));
    CHECK(cobs_case((const uint8_t *)"\x00\x11\x00", 3, (const uint8_t *)"\x01\x02\x11\x01", 4));
    CHECK(cobs_case((const uint8_t *)"\x11\x22\x00\x33", 4, (const uint8_t *)"\x03\x11\x22\x02\x33", 5));
    CHECK(cobs_case((const uint8_t *)"\x11\x22\x33\x44", 4, (const uint8_t *)"\x05\x11\x22\x33\x44", 5));
    CHECK(cobs_case((const uint8_t *)"\x11\x00\x00\x00", 4, (const uint8_t *)"\x02\x11\x01\x01\x01", 5));
    CHECK(cobs_case((const uint8_t *)"", 0, (const uint8_t *)"\x01", 1));
    uint8_t in[300], expect[310];
    for (int i = 0; i < 255; i++) {
        in[i] = (uint8_t)(i + 1); /* 01 .. FF */
    }
    /* 01..FE -> FF 01..FE (no empty block after a full one at the end) */
    expect[0] = 0xFF;
    memcpy(expect + 1, in, 254);
    CHECK(cobs_case(in, 254, expect, 255));
    /* 01..FF -> FF 01..FE 02 FF */
    expect[255] = 0x02;
    expect[256] = 0xFF;
    CHECK(cobs_case(in, 255, expect, 257));
    /* 00 01..FE -> 01 FF 01..FE */
    uint8_t in2[255];
    in2[0] = 0;
    memcpy(in2 + 1, in, 254);
    uint8_t expect2[256] = {0x01, 0xFF};
    memcpy(expect2 + 2, in, 254);
    CHECK(cobs_case(in2, 255, expect2, 256));
}

static void test_cobs_rejects_and_bounds(void) {
    uint8_t out[8];
    CHECK(hk_cobs_decode((const uint8_t *)"\x05\x11\x22", 3, out, sizeof out) == -1); /* block runs past the end */
    CHECK(hk_cobs_decode((const uint8_t *)"\x03\x11\x00\x22", 4, out, sizeof out) == -1); /* zero inside */
    CHECK(hk_cobs_decode((const uint8_t *)"\x09\x01\x02\x03\x04\x05\x06\x07\x08", 9, out, 4) == -1); /* no room */
    uint8_t small[3];
    CHECK(hk_cobs_encode((const uint8_t *)"\x11\x22\x33", 3, small, sizeof small) == 0); /* no room: nothing */
    /* in-place decoding (the core decodes its receive buffer in place) */
    uint8_t buf[6] = {0x03, 0x11, 0x22, 0x02, 0x33};
    CHECK(hk_cobs_decode(buf, 5, buf, sizeof buf) == 4 && memcmp(buf, "\x11\x22\x00\x33", 4) == 0);
}

static void test_hello_byte_by_byte_and_negotiation(void) {
    boot(0);
    uint8_t wire[64];
    uint8_t req[4] = {0x00, 0x04, HK_PROTOCOL_VERSION, 0}; /* host proposes 1024 */
    size_t n = make_packet(wire, HK_MSG_HELLO, 0, 7, req, sizeof req);
    for (size_t i = 0; i < n; i++) {
        CHECK(take((packet_t[1]){0}, 1) == 0); /* nothing before the delimiter */
        hk_core_feed(wire + i, 1);
    }
    static packet_t rsp[2];
    CHECK(take(rsp, 2) == 1);
    CHECK(rsp[0].type == HK_MSG_HELLO && rsp[0].seq == 7 && rsp[0].flags == HK_FLAG_RESPONSE);
    CHECK(rsp[0].status == HK_STATUS_OK && rsp[0].length == sizeof(hk_hello_rsp_t));
    CHECK(rd16(rsp[0].payload + 2) == 1024); /* min(host 1024, device 1600) */
    CHECK(rd16(rsp[0].payload + 4) == HK_RX_CREDITS);
    /* the board name is cut to its 24-byte field, without overflowing into build_id */
    hk_hello_rsp_t h;
    memcpy(&h, rsp[0].payload, sizeof h);
    CHECK(memcmp(h.board, "a-board-name-longer-than", 24) == 0 && memcmp(h.build_id, "unit\0", 5) == 0);
    hello(10, rsp); /* below the protocol minimum: raised to it */
    CHECK(rd16(rsp[0].payload + 2) == HK_MIN_PAYLOAD);
    uint8_t old[4] = {0x00, 0x04, HK_PROTOCOL_VERSION + 1, 0};
    send(HK_MSG_HELLO, 0, 9, old, sizeof old);
    CHECK(take(rsp, 1) == 1 && rsp[0].status == HK_STATUS_VERSION && rd16(rsp[0].payload) == HK_PROTOCOL_VERSION);
}

static void test_damaged_frames_are_nacked_and_dropped(void) {
    boot(0);
    static packet_t rsp[4];
    uint8_t wire[64];
    uint8_t req[4] = {0x00, 0x04, HK_PROTOCOL_VERSION, 0};
    size_t n = make_packet(wire, HK_MSG_HELLO, 0, 3, req, sizeof req);
    uint32_t bad_before = hk_core_stats()->frames_bad;
    wire[4] ^= 0x10; /* bit error */
    hk_core_feed(wire, n);
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_NACK && rsp[0].status == HK_STATUS_BAD_CRC && rsp[0].seq == 0);
    hk_core_feed((const uint8_t *)"\x05\x01\x02\x00", 4); /* COBS block runs into the delimiter */
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_NACK && rsp[0].status == HK_STATUS_BAD_CRC);
    hk_core_feed((const uint8_t *)"\x03\x01\x02\x00", 4); /* valid COBS, shorter than a header */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_LENGTH);
    hk_core_feed((const uint8_t *)"\x00\x00\x00", 3); /* line idle: no answer */
    CHECK(take(rsp, 4) == 0);
    /* a frame longer than the receive buffer: dropped at its delimiter, one NACK, no overflow */
    static uint8_t junk[5000];
    memset(junk, 0x41, sizeof junk);
    hk_core_feed(junk, sizeof junk);
    CHECK(take(rsp, 4) == 0);
    hk_core_feed((const uint8_t *)"\x00", 1);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_LENGTH);
    CHECK(hk_core_stats()->frames_bad == bad_before + 4);
    /* length field that disagrees with the frame: NACK carries the (CRC-checked) seq */
    static uint8_t body[32] = {HK_MSG_HELLO, 0, 0x34, 0x12, 0, 0, 9, 0, 1, 2, 3, 4};
    uint32_t crc = hk_crc32(0u, body, 12);
    for (int i = 0; i < 4; i++) {
        body[12 + i] = (uint8_t)(crc >> (8 * i));
    }
    n = hk_cobs_encode(body, 16, wire, sizeof wire);
    wire[n] = 0;
    hk_core_feed(wire, n + 1);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_LENGTH && rsp[0].seq == 0x1234);
    /* the link still works */
    hello(1024, rsp);
    CHECK(rsp[0].status == HK_STATUS_OK);
}

static void test_retry_cache(void) {
    boot(0);
    static packet_t rsp[4];
    hello(1024, rsp);
    static uint8_t run[4 + 300];
    memset(run, 0, 4);
    for (int i = 0; i < 300; i++) {
        run[4 + i] = (uint8_t)i;
    }
    uint32_t invokes = hk_core_stats()->invokes;
    send(HK_MSG_RUN, 0, 42, run, sizeof run);
    size_t first_len = s_out_len;
    static uint8_t first[4096];
    memcpy(first, s_out, s_out_len);
    s_out_len = 0;
    send(HK_MSG_RUN, HK_FLAG_RETRY, 42, run, sizeof run); /* retried: same bytes back, not run again */
    CHECK(s_out_len == first_len && memcmp(s_out, first, first_len) == 0);
    CHECK(hk_core_stats()->invokes == invokes + 1);
    CHECK(take(rsp, 4) == 1 && rsp[0].payload[12] == 1); /* fake engine: first invoke */
    send(HK_MSG_RUN, 0, 43, run, sizeof run); /* a new seq runs */
    CHECK(take(rsp, 4) == 1 && rsp[0].payload[12] == 2 && hk_core_stats()->invokes == invokes + 2);
    send(HK_MSG_INVOKE, 0, 43, NULL, 0); /* same seq, another type: not a retry */
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_INVOKE && hk_core_stats()->invokes == invokes + 3);
    /* a NACK is not cached: after a damaged copy, the resend with its seq really runs */
    uint8_t wire[1024];
    size_t n = make_packet(wire, HK_MSG_RUN, 0, 44, run, sizeof run);
    wire[30] ^= 1;
    hk_core_feed(wire, n);
    wire[30] ^= 1;
    hk_core_feed(wire, n);
    CHECK(take(rsp, 4) == 2 && rsp[0].type == HK_MSG_NACK && rsp[1].type == HK_MSG_RUN && rsp[1].seq == 44);
    CHECK(hk_core_stats()->invokes == invokes + 4);
}

static void test_window_and_ignored_packets(void) {
    boot(0);
    static packet_t rsp[8];
    hello(64, rsp);
    /* several requests in one read: answered in order (the platform's buffer is the window) */
    static uint8_t wire[4096];
    size_t n = 0;
    static uint8_t chunk[4 + 60];
    for (uint16_t k = 0; k < 5; k++) {
        uint32_t off = 60u * k;
        chunk[0] = (uint8_t)off;
        chunk[1] = (uint8_t)(off >> 8);
        chunk[2] = chunk[3] = 0;
        memset(chunk + 4, k + 1, 60);
        n += make_packet(wire + n, HK_MSG_RUN, k < 4 ? HK_FLAG_MORE : 0, (uint16_t)(100 + k), chunk, sizeof chunk);
    }
    hk_core_feed(wire, n);
    CHECK(take(rsp, 8) == 5);
    for (int k = 0; k < 4; k++) {
        CHECK(rsp[k].seq == 100 + k && rsp[k].status == HK_STATUS_OK && rd32(rsp[k].payload) == 60u * (uint32_t)(k + 1));
        CHECK(rd16(rsp[k].payload + 4) == HK_RX_CREDITS);
    }
    CHECK(rsp[4].seq == 104 && rsp[4].status == HK_STATUS_OK && rd32(rsp[4].payload + 8) == 4u);
    /* fake engine output: [invokes, sum, first, last] */
    CHECK(rsp[4].payload[12] == 1 && rsp[4].payload[14] == 1 && rsp[4].payload[15] == 5);
    /* the device takes requests only: its own answers/events echoed back are ignored */
    send(HK_MSG_HELLO, HK_FLAG_RESPONSE, 5, "abcd", 4);
    send(HK_MSG_LOG, HK_FLAG_EVENT, 0, "x", 1);
    CHECK(take(rsp, 8) == 0);
    /* above the negotiated 64 bytes: refused, not buffered */
    static uint8_t big[4 + 100];
    memset(big, 0, sizeof big);
    send(HK_MSG_SET_INPUT, 0, 6, big, sizeof big);
    CHECK(take(rsp, 8) == 1 && rsp[0].type == HK_MSG_NACK && rsp[0].status == HK_STATUS_PAYLOAD_TOO_BIG);
    send(0x55, 0, 7, NULL, 0);
    CHECK(take(rsp, 8) == 1 && rsp[0].type == HK_MSG_NACK && rsp[0].status == HK_STATUS_UNKNOWN_TYPE && rsp[0].seq == 7);
}

static void test_log_event(void) {
    boot(0);
    static packet_t rsp[2];
    hk_core_log("short");
    CHECK(take(rsp, 2) == 1 && rsp[0].type == HK_MSG_LOG && rsp[0].flags == HK_FLAG_EVENT && rsp[0].seq == 0);
    CHECK(rsp[0].length == 5 && memcmp(rsp[0].payload, "short", 5) == 0);
    char text[HK_LOG_MAX_EVENTS * HK_MIN_PAYLOAD + 50u]; /* longer than the most one call sends */
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    static packet_t many[HK_LOG_MAX_EVENTS + 1u];
    hk_core_log(text); /* longer than the smallest payload: consecutive pieces, at most HK_LOG_MAX_EVENTS */
    CHECK(take(many, HK_LOG_MAX_EVENTS + 1u) == HK_LOG_MAX_EVENTS);
    for (unsigned i = 0; i < HK_LOG_MAX_EVENTS; i++) {
        CHECK(many[i].type == HK_MSG_LOG && many[i].length == HK_MIN_PAYLOAD && many[i].payload[0] == 'x');
    }
    text[100] = '\0';
    hk_core_log(text);
    CHECK(take(many, HK_LOG_MAX_EVENTS + 1u) == 2 && many[0].length == HK_MIN_PAYLOAD && many[1].length == 100u - HK_MIN_PAYLOAD);
}

static void test_not_ready_engine_and_reset(void) {
    boot(2); /* AllocateTensors failed */
    static packet_t rsp[2];
    uint8_t req[4] = {0x00, 0x04, HK_PROTOCOL_VERSION, 0};
    send(HK_MSG_HELLO, 0, 1, req, sizeof req);
    static packet_t got[3];
    CHECK(take(got, 3) == 3); /* the engine's reason as LOG events (64 + the rest), then the answer */
    CHECK(got[0].type == HK_MSG_LOG && got[0].flags == HK_FLAG_EVENT && got[1].type == HK_MSG_LOG);
    CHECK(got[0].length + got[1].length == strlen(g_fake_error_text));
    CHECK(memcmp(got[0].payload, g_fake_error_text, got[0].length) == 0);
    CHECK(memcmp(got[1].payload, g_fake_error_text + got[0].length, got[1].length) == 0);
    rsp[0] = got[2];
    CHECK(rsp[0].type == HK_MSG_HELLO);
    CHECK(rsp[0].status == HK_STATUS_OK && (int16_t)rd16(rsp[0].payload + 6) == 2);
    uint32_t invokes = hk_core_stats()->invokes;
    send(HK_MSG_INVOKE, 0, 2, NULL, 0);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_ENGINE_NOT_READY && hk_core_stats()->invokes == invokes);
    g_fake_alloc_status = 0; /* e.g. the host port freed memory; a RESET re-initialises the engine */
    int resets = s_platform_resets;
    send(HK_MSG_RESET, 0, 3, NULL, 0);
    CHECK(take(rsp, 2) == 1 && rsp[0].type == HK_MSG_RESET && rsp[0].status == HK_STATUS_OK);
    CHECK(s_platform_resets == resets + 1);
    static uint8_t big[4 + 300];
    memset(big, 0, sizeof big);
    send(HK_MSG_RUN, 0, 4, big, sizeof big); /* the negotiated payload is gone with the reset */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_PAYLOAD_TOO_BIG);
    hello(1024, rsp);
    CHECK((int16_t)rd16(rsp[0].payload + 6) == 0);
    send(HK_MSG_RUN, 0, 5, big, sizeof big);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK);
}

static void test_bad_requests(void) {
    boot(0);
    static packet_t rsp[2];
    hello(1024, rsp);
    uint8_t perf[4] = {0, 0, (uint8_t)(HK_PERF_MAX_RUNS + 1), 0};
    send(HK_MSG_PERF, 0, 2, perf, sizeof perf);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    uint32_t invokes = hk_core_stats()->invokes;
    uint8_t warm[4] = {(uint8_t)(HK_PERF_MAX_WARMUP + 1u), (uint8_t)((HK_PERF_MAX_WARMUP + 1u) >> 8), 1, 0};
    send(HK_MSG_PERF, 0, 20, warm, sizeof warm); /* warm-up beyond the bound: refused, nothing runs */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST && hk_core_stats()->invokes == invokes);
    warm[0] = (uint8_t)HK_PERF_MAX_WARMUP;
    warm[1] = (uint8_t)(HK_PERF_MAX_WARMUP >> 8);
    send(HK_MSG_PERF, 0, 21, warm, sizeof warm); /* at the bound: runs */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK);
    CHECK(hk_core_stats()->invokes == invokes + HK_PERF_MAX_WARMUP + 1u);
    uint8_t get[6] = {5, 0, 0, 0, 10, 0}; /* offset 5 of a 4-byte output */
    send(HK_MSG_GET_OUTPUT, 0, 3, get, sizeof get);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET);
    uint8_t set[4 + 4] = {0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}; /* offset 2^32-1: no wrap-around */
    send(HK_MSG_SET_INPUT, 0, 4, set, sizeof set);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET);
    send(HK_MSG_RUN, 0, 5, set, 3); /* shorter than the offset field */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    uint8_t part[4 + 10] = {0};
    send(HK_MSG_RUN, 0, 6, part, sizeof part); /* a last chunk that leaves the tensor incomplete */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET);
    send(HK_MSG_HELLO, 0, 7, "abc", 3);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
}

static void put_chunk(uint8_t *req, uint32_t offset, uint8_t fill, size_t n) {
    req[0] = (uint8_t)offset;
    req[1] = (uint8_t)(offset >> 8);
    req[2] = req[3] = 0;
    memset(req + 4, fill, n);
}

static void test_chunks_fill_the_tensor_without_gaps(void) {
    boot(0);
    static packet_t rsp[2];
    hello(1024, rsp);
    static uint8_t req[4 + 300];
    put_chunk(req, 0, 1, 60);
    send(HK_MSG_SET_INPUT, HK_FLAG_MORE, 2, req, 4 + 60);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK && rd32(rsp[0].payload) == 60);
    put_chunk(req, 120, 3, 60); /* the chunk at 60 is missing */
    send(HK_MSG_SET_INPUT, HK_FLAG_MORE, 3, req, 4 + 60);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET);
    put_chunk(req, 30, 2, 60); /* overlapping what arrived (a resent chunk): fine */
    send(HK_MSG_SET_INPUT, HK_FLAG_MORE, 4, req, 4 + 60);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK && rd32(rsp[0].payload) == 90);
    put_chunk(req, 90, 4, 210);
    uint32_t invokes = hk_core_stats()->invokes;
    send(HK_MSG_RUN, 0, 5, req, 4 + 210); /* completes the tensor: runs */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK && hk_core_stats()->invokes == invokes + 1);
    /* fake engine output: [invokes, sum, first, last]: 30*1 + 60*2 + 210*4 = 990 */
    CHECK(rsp[0].payload[13] == (uint8_t)990 && rsp[0].payload[14] == 1 && rsp[0].payload[15] == 4);
    put_chunk(req, 90, 5, 210); /* rewriting part of a complete tensor is allowed */
    send(HK_MSG_SET_INPUT, HK_FLAG_MORE, 6, req, 4 + 10);
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_OK);
    put_chunk(req, 0, 6, 10);
    send(HK_MSG_RUN, 0, 7, req, 4 + 10); /* offset 0 starts a new tensor; as the last chunk it is short */
    CHECK(take(rsp, 2) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET && hk_core_stats()->invokes == invokes + 1);
}

static void test_stats_and_reset_button(void) {
    boot(0);
    static packet_t rsp[4];
    hello(1024, rsp);
    uint8_t run[4 + 16] = {0};
    send(HK_MSG_RUN, 0, 7, run, sizeof run);
    CHECK(take(rsp, 4) == 1);
    send(HK_MSG_STATS, 0, 8, NULL, 0);
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_STATS && rsp[0].length == sizeof(hk_stats_rsp_t));
    const hk_core_stats_t *st = hk_core_stats();
    CHECK(rd32(rsp[0].payload) == st->frames_ok && rd32(rsp[0].payload + 12) == st->invokes);
    CHECK(rd32(rsp[0].payload + 20) == st->inits && st->inits >= 1u);
    uint8_t junk = 1;
    send(HK_MSG_STATS, 0, 9, &junk, 1); /* STATS takes no payload */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    /* the reset button: counters cleared, payload back to the default, one init since */
    int resets = s_platform_resets;
    hk_core_reset();
    CHECK(st->invokes == 0u && st->frames_ok == 0u && st->inits == 1u && s_platform_resets == resets + 1);
    static uint8_t big[4 + 400];
    send(HK_MSG_RUN, 0, 10, big, sizeof big); /* larger than HK_DEFAULT_PAYLOAD until the next HELLO */
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_NACK && rsp[0].status == HK_STATUS_PAYLOAD_TOO_BIG);
}

static void test_profile_pages(void) {
    boot(0);
    static packet_t rsp[4];
    hello(HK_MIN_PAYLOAD, rsp); /* 64 B: 12 B of head + 6 entries of 8 B per page */
    CHECK(rd16(rsp[0].payload + offsetof(hk_hello_rsp_t, op_count)) == 10u);
    CHECK(rd16(rsp[0].payload + offsetof(hk_hello_rsp_t, features)) == (HK_FEATURE_PROFILE | HK_FEATURE_TENSOR));
    uint8_t first[2] = {1, 0};
    send(HK_MSG_PROFILE, 0, 2, first, sizeof first); /* paging before any run */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    uint8_t zero[2] = {0, 0};
    send(HK_MSG_PROFILE, 0, 3, zero, sizeof zero);
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_PROFILE && rsp[0].status == HK_STATUS_OK);
    CHECK(rsp[0].length == 12u + 6u * 8u);
    CHECK(rd16(rsp[0].payload) == 10u && rd16(rsp[0].payload + 2) == 10u && rd16(rsp[0].payload + 4) == 0u);
    /* the fake counter advances 48,000 per read: 2 reads per operator, 1 before and 1 after all */
    CHECK(rd32(rsp[0].payload + 8) == 21u * 48000u);
    for (unsigned i = 0; i < 6u; i++) {
        const uint8_t *e = rsp[0].payload + 12 + 8 * i;
        CHECK(rd16(e) == k_fake_codes[i] && rd32(e + 4) == 48000u);
    }
    uint8_t six[2] = {6, 0};
    send(HK_MSG_PROFILE, 0, 4, six, sizeof six);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_OK && rsp[0].length == 12u + 4u * 8u);
    CHECK(rd16(rsp[0].payload + 4) == 6u && rd16(rsp[0].payload + 12 + 3 * 8) == k_fake_codes[9]);
    uint8_t ten[2] = {10, 0};
    send(HK_MSG_PROFILE, 0, 5, ten, sizeof ten); /* past the end */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    send(HK_MSG_PROFILE, 0, 6, zero, 1); /* short request */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    g_fake_features = 0u;
    boot(0);
    hello(HK_MIN_PAYLOAD, rsp);
    CHECK(rd16(rsp[0].payload + offsetof(hk_hello_rsp_t, features)) == 0u);
    send(HK_MSG_PROFILE, 0, 7, zero, sizeof zero);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_ENGINE_UNSUPPORTED);
    g_fake_features = HK_FEATURE_PROFILE | HK_FEATURE_TENSOR;
    boot(2); /* allocation failed: nothing runs */
    send(HK_MSG_PROFILE, 0, 8, zero, sizeof zero);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_ENGINE_NOT_READY);
}

static void put_tensor_req(uint8_t *req, uint32_t offset, uint16_t op, uint16_t len) {
    for (int i = 0; i < 4; i++) {
        req[i] = (uint8_t)(offset >> (8 * i));
    }
    req[4] = (uint8_t)op;
    req[5] = (uint8_t)(op >> 8);
    req[6] = (uint8_t)len;
    req[7] = (uint8_t)(len >> 8);
}

static void test_tensor_chunks(void) {
    boot(0);
    static packet_t rsp[4];
    hello(HK_MIN_PAYLOAD, rsp); /* 64 B: 14 B of head + 50 B of tensor per answer */
    static uint8_t input[4 + 300];
    for (unsigned i = 0; i < 300u; i++) {
        input[4 + i] = (uint8_t)(i * 7u);
    }
    for (unsigned off = 0; off < 300u; off += 60u) { /* SET_INPUT in chunks that fit 64 B */
        uint8_t chunk[4 + 60];
        chunk[0] = (uint8_t)off;
        chunk[1] = (uint8_t)(off >> 8);
        chunk[2] = chunk[3] = 0;
        memcpy(chunk + 4, input + 4 + off, 60);
        send(HK_MSG_SET_INPUT, off + 60u < 300u ? HK_FLAG_MORE : 0, (uint16_t)(20 + off), chunk, sizeof chunk);
        CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_OK);
    }
    uint8_t req[8];
    put_tensor_req(req, 250u, 3u, 1000u); /* asks more than fits: cut to the payload */
    send(HK_MSG_TENSOR, 0, 40, req, sizeof req);
    CHECK(take(rsp, 4) == 1 && rsp[0].type == HK_MSG_TENSOR && rsp[0].status == HK_STATUS_OK);
    CHECK(rsp[0].length == 14u + 50u);
    CHECK(rd32(rsp[0].payload) == 250u && rd32(rsp[0].payload + 4) == 300u && rd16(rsp[0].payload + 8) == 3u);
    CHECK(rd16(rsp[0].payload + 10) == 13u && rd16(rsp[0].payload + 12) == 9u); /* TFLite int8 */
    int same = 1;
    for (unsigned i = 0; i < 50u; i++) {
        same &= rsp[0].payload[14 + i] == (uint8_t)(((250u + i) * 7u) ^ 3u);
    }
    CHECK(same);
    put_tensor_req(req, 290u, 3u, 50u); /* the tail: cut to the tensor's end */
    send(HK_MSG_TENSOR, 0, 41, req, sizeof req);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_OK && rsp[0].length == 14u + 10u);
    put_tensor_req(req, 301u, 3u, 50u);
    send(HK_MSG_TENSOR, 0, 42, req, sizeof req);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_OFFSET);
    put_tensor_req(req, 0u, 10u, 50u); /* operator 10 of 10 */
    send(HK_MSG_TENSOR, 0, 43, req, sizeof req);
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
    send(HK_MSG_TENSOR, 0, 44, req, 6); /* short request */
    CHECK(take(rsp, 4) == 1 && rsp[0].status == HK_STATUS_BAD_REQUEST);
}

/* ---- an engine init that crashes: the "reset" is a longjmp out of hk_engine_init --------------- */
static jmp_buf s_crash;
static int s_crash_armed; /* set right after setjmp: a crash never jumps to a stale jmp_buf */
static uint32_t s_mark_during_init;
static void crash_in_init(void) {
    s_mark_during_init = s_noinit;
    if (s_crash_armed) {
        s_crash_armed = 0;
        longjmp(s_crash, 1); /* like a HardFault whose handler resets the MCU: init never returns */
    }
}
static void note_mark(void) { s_mark_during_init = s_noinit; }

static int log_is(const packet_t *p, const char *text) {
    return p->type == HK_MSG_LOG && p->length == strlen(text) && memcmp(p->payload, text, p->length) == 0;
}

static void test_engine_init_crash_is_not_retried_at_boot(void) {
    static packet_t got[4];
    uint8_t req[4] = {0x00, 0x04, HK_PROTOCOL_VERSION, 0};
    s_have_noinit = 1;
    s_noinit = 0xA5A5A5A5u; /* what SRAM may hold after power-on */
    g_fake_init_hook = note_mark;
    static unsigned inits; /* static: kept across the longjmp */
    inits = g_fake_inits;
    boot(0); /* a normal boot: init runs with a marker set, cleared when it returns */
    CHECK(g_fake_inits == inits + 1u && s_mark_during_init != 0xA5A5A5A5u && s_mark_during_init != 0u);
    CHECK(s_noinit != s_mark_during_init);
    static uint32_t marker;
    marker = s_mark_during_init;

    g_fake_init_hook = crash_in_init; /* the next init crashes */
    if (setjmp(s_crash) == 0) {
        s_crash_armed = 1;
        hk_core_reset(); /* the reset button: init runs again, and dies in it */
        CHECK(!"hk_engine_init returned");
    }
    CHECK(s_noinit == marker); /* left set: the reset came from inside init */
    inits = g_fake_inits;
    s_fault_text = "UsageFault (UNDEFINSTR) PC=0x000012a4";
    boot(0); /* the boot after the fault's reset: the link comes up without running init */
    CHECK(g_fake_inits == inits && s_noinit != marker);
    send(HK_MSG_HELLO, 0, 1, req, sizeof req);
    CHECK(take(got, 4) == 3); /* two LOG events (why, and the platform's fault record), the answer */
    CHECK(log_is(&got[0], "engine init crashed on the previous boot: not retried"));
    CHECK(log_is(&got[1], "init fault: UsageFault (UNDEFINSTR) PC=0x000012a4"));
    CHECK(got[2].type == HK_MSG_HELLO && got[2].status == HK_STATUS_OK);
    CHECK((int16_t)rd16(got[2].payload + 6) == HK_STATUS_ENGINE_INIT_FAULT && HK_STATUS_ENGINE_INIT_FAULT == 9u);
    static uint32_t invokes;
    invokes = hk_core_stats()->invokes;
    static uint8_t run[4 + 300];
    send(HK_MSG_RUN, 0, 2, run, sizeof run);
    CHECK(take(got, 4) == 1 && got[0].status == HK_STATUS_ENGINE_NOT_READY && hk_core_stats()->invokes == invokes);
    send(HK_MSG_INVOKE, 0, 3, NULL, 0);
    CHECK(take(got, 4) == 1 && got[0].status == HK_STATUS_ENGINE_NOT_READY && hk_core_stats()->invokes == invokes);

    /* RESET retries the init: answered first, then init crashes again; the next boot skips it again */
    if (setjmp(s_crash) == 0) {
        s_crash_armed = 1;
        send(HK_MSG_RESET, 0, 4, NULL, 0);
        CHECK(!"hk_engine_init returned");
    }
    s_crash_armed = 0;
    CHECK(g_fake_inits == inits + 1u && s_noinit == marker);
    CHECK(take(got, 4) == 1 && got[0].type == HK_MSG_RESET && got[0].status == HK_STATUS_OK);
    s_fault_text = NULL; /* a platform without a fault record: the reason alone */
    boot(0);
    CHECK(g_fake_inits == inits + 1u);
    send(HK_MSG_HELLO, 0, 5, req, sizeof req);
    CHECK(take(got, 4) == 2 && log_is(&got[0], "engine init crashed on the previous boot: not retried"));
    CHECK((int16_t)rd16(got[1].payload + 6) == HK_STATUS_ENGINE_INIT_FAULT);

    /* the crash is gone (e.g. a transient): RESET brings the engine up */
    g_fake_init_hook = NULL;
    send(HK_MSG_RESET, 0, 6, NULL, 0);
    CHECK(take(got, 4) == 1 && got[0].status == HK_STATUS_OK && g_fake_inits == inits + 2u);
    send(HK_MSG_HELLO, 0, 7, req, sizeof req);
    CHECK(take(got, 4) == 1 && (int16_t)rd16(got[0].payload + 6) == 0); /* no LOG: init is fine */
    send(HK_MSG_RUN, 0, 8, run, sizeof run);
    CHECK(take(got, 4) == 1 && got[0].status == HK_STATUS_OK && hk_core_stats()->invokes == invokes + 1u);

    /* the marker only says "init in progress": a failed (returned) init is retried at every boot */
    g_fake_alloc_status = 2;
    boot(2);
    boot(2);
    CHECK(g_fake_inits == inits + 4u && s_noinit != marker);
    s_have_noinit = 0;
    s_out_len = 0;
}

int main(void) {
    test_crc32();
    test_cobs_vectors();
    test_cobs_rejects_and_bounds();
    test_hello_byte_by_byte_and_negotiation();
    test_damaged_frames_are_nacked_and_dropped();
    test_retry_cache();
    test_window_and_ignored_packets();
    test_log_event();
    test_not_ready_engine_and_reset();
    test_bad_requests();
    test_chunks_fill_the_tensor_without_gaps();
    test_stats_and_reset_button();
    test_profile_pages();
    test_tensor_chunks();
    test_engine_init_crash_is_not_retried_at_boot();
    printf("ctest: %d checks, %d failed\n", s_checks, s_failures);
    return s_failures ? 1 : 0;
}
