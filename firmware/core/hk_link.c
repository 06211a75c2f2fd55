/*
 * hk_link.c - the link layer of the device: the receive state machine (bytes -> frames -> checked
 * packets), transmit (packet -> CRC -> COBS -> delimiter), NACKs, LOG events and the retry cache.
 * Commands are handled in hk_dispatch.c.
 */
#include <string.h>

#include "../protocol/hk_protocol.h"
#include "hk_cobs.h"
#include "hk_core.h"
#include "hk_core_internal.h"
#include "hk_crc32.h"
#include "hk_platform.h"

/* A whole packet (header + payload + CRC) and its worst-case COBS encoding plus the delimiter. */
#define BODY_MAX (HK_HEADER_SIZE + HK_MAX_PAYLOAD + HK_CRC_SIZE)
#define WIRE_MAX (HK_COBS_MAX_ENCODED(BODY_MAX) + 1u)
/* NACKs and LOG events are small: they never exceed the smallest payload a host may negotiate. */
#define EVENT_BODY_MAX (HK_HEADER_SIZE + HK_MIN_PAYLOAD + HK_CRC_SIZE)
#define EVENT_WIRE_MAX (HK_COBS_MAX_ENCODED(EVENT_BODY_MAX) + 1u)

_Static_assert(HK_MAX_PAYLOAD >= HK_MIN_PAYLOAD, "HK_MAX_PAYLOAD below the protocol minimum");
_Static_assert(HK_MAX_PAYLOAD <= 0xFFFFu, "HK_MAX_PAYLOAD must fit the 16-bit length field");
_Static_assert(HK_RX_CREDITS >= 1u && HK_RX_CREDITS <= 16u, "HK_RX_CREDITS: 1..16 (the retry cache holds 2 x HK_RX_CREDITS - 1 answers)");

static uint8_t s_rx[WIRE_MAX]; /* encoded frame being received (decoded in place) */
static size_t s_rx_len;
static int s_rx_overflow; /* the current frame outgrew s_rx: dropped at its delimiter */

static uint8_t s_body[BODY_MAX]; /* answer being built */

/* The retry cache: the last HK_RETRY_CACHE answers as sent, a ring. A host sends a request only
 * within HK_RX_CREDITS places (in its send order) of its oldest unanswered one, so between a request's
 * run and its resend at most 2 x (HK_RX_CREDITS - 1) other requests run here (older ones whose first
 * try was lost, newer ones): every request the host may still resend has its answer cached, and a
 * resent request whose answer was lost is answered again, never run twice. */
#define HK_RETRY_CACHE (2u * HK_RX_CREDITS - 1u)
typedef struct {
    uint8_t wire[WIRE_MAX];
    size_t len;
    int valid;
    uint8_t type;
    uint16_t seq;
} hk_cached_answer_t;

static hk_cached_answer_t s_cache[HK_RETRY_CACHE];
static unsigned s_cache_next; /* slot the next answer goes to (the oldest one) */

static uint8_t s_event_body[EVENT_BODY_MAX];
static uint8_t s_event_wire[EVENT_WIRE_MAX];

static hk_core_stats_t s_stats;

/* Header + payload already in body -> header fields, CRC, COBS, delimiter; returns the wire length. */
static size_t seal(uint8_t *body, size_t payload_len, uint8_t type, uint8_t flags, uint16_t seq, uint16_t status,
                   uint8_t *wire, size_t wire_cap) {
    body[0] = type;
    body[1] = flags;
    hk_put_u16(body + 2, seq);
    hk_put_u16(body + 4, status);
    hk_put_u16(body + 6, (uint16_t)payload_len);
    size_t n = HK_HEADER_SIZE + payload_len;
    hk_put_u32(body + n, hk_crc32(0u, body, n));
    size_t enc = hk_cobs_encode(body, n + HK_CRC_SIZE, wire, wire_cap - 1u);
    wire[enc] = HK_DELIMITER;
    return enc + 1u;
}

static void send_answer(uint8_t type, uint16_t seq, uint16_t status, size_t payload_len) {
    hk_cached_answer_t *slot = &s_cache[s_cache_next];
    s_cache_next = (s_cache_next + 1u) % HK_RETRY_CACHE;
    slot->len = seal(s_body, payload_len, type, HK_FLAG_RESPONSE, seq, status, slot->wire, sizeof slot->wire);
    slot->valid = 1;
    slot->type = type;
    slot->seq = seq;
    (void)hk_platform_write(slot->wire, slot->len);
}

static const hk_cached_answer_t *cached(uint8_t type, uint16_t seq) {
    for (unsigned i = 0; i < HK_RETRY_CACHE; i++) {
        if (s_cache[i].valid && s_cache[i].type == type && s_cache[i].seq == seq) {
            return &s_cache[i];
        }
    }
    return NULL;
}

static void send_nack(uint16_t seq, uint16_t status) {
    /* Not cached: the host resends the request, which must then really run. */
    s_stats.nacks++;
    size_t n = seal(s_event_body, 0u, HK_MSG_NACK, HK_FLAG_RESPONSE, seq, status, s_event_wire, sizeof s_event_wire);
    (void)hk_platform_write(s_event_wire, n);
}

void hk_core_log(const char *text) {
    /* Pieces of at most the minimum payload, at most HK_LOG_MAX_EVENTS of them (the rest is cut):
     * TFLM's messages (~80 characters) keep their numbers. */
    for (unsigned piece = 0; piece < HK_LOG_MAX_EVENTS && *text != '\0'; piece++) {
        size_t len = 0;
        while (len < HK_MIN_PAYLOAD && text[len] != '\0') {
            len++;
        }
        memcpy(s_event_body + HK_HEADER_SIZE, text, len);
        size_t n = seal(s_event_body, len, HK_MSG_LOG, HK_FLAG_EVENT, 0u, 0u, s_event_wire, sizeof s_event_wire);
        (void)hk_platform_write(s_event_wire, n);
        text += len;
    }
}

static void drop(uint16_t seq, uint16_t status) {
    s_stats.frames_bad++;
    send_nack(seq, status);
}

/* One complete frame (delimiter stripped) is in s_rx[0..s_rx_len). */
static void handle_frame(void) {
    long n = hk_cobs_decode(s_rx, s_rx_len, s_rx, sizeof s_rx);
    if (n < 0) {
        drop(0u, HK_STATUS_BAD_CRC); /* a damaged COBS block: corrupted like a bad CRC */
        return;
    }
    if ((size_t)n < HK_HEADER_SIZE + HK_CRC_SIZE) {
        drop(0u, HK_STATUS_BAD_LENGTH);
        return;
    }
    size_t body = (size_t)n - HK_CRC_SIZE;
    if (hk_crc32(0u, s_rx, body) != hk_get_u32(s_rx + body)) {
        drop(0u, HK_STATUS_BAD_CRC); /* the seq can't be trusted either: NACK with seq 0 */
        return;
    }
    uint8_t type = s_rx[0];
    uint8_t flags = s_rx[1];
    uint16_t seq = hk_get_u16(s_rx + 2);
    uint16_t length = hk_get_u16(s_rx + 6);
    if (length != body - HK_HEADER_SIZE) {
        drop(seq, HK_STATUS_BAD_LENGTH);
        return;
    }
    s_stats.frames_ok++;
    if (flags & (HK_FLAG_RESPONSE | HK_FLAG_EVENT)) {
        return; /* the device takes requests only (e.g. its own echo on a looped-back line) */
    }
    const hk_cached_answer_t *hit = cached(type, seq);
    if (hit != NULL) {
        s_stats.cache_hits++; /* a retry: the same answer again, nothing runs twice */
        (void)hk_platform_write(hit->wire, hit->len);
        return;
    }
    if (length > hk_dispatch_payload() && type != HK_MSG_HELLO) {
        send_nack(seq, HK_STATUS_PAYLOAD_TOO_BIG);
        return;
    }
    size_t out_len = 0u;
    uint16_t status = hk_dispatch(type, flags, s_rx + HK_HEADER_SIZE, length, s_body + HK_HEADER_SIZE, &out_len);
    if (status == HK_STATUS_UNKNOWN_TYPE) {
        send_nack(seq, status);
        return;
    }
    send_answer(type, seq, status, out_len);
    if (hk_dispatch_take_reset()) { /* answered first: the host learns the reset was accepted */
        hk_dispatch_reset();
        hk_platform_reset();
        hk_core_init();
    }
}

void hk_core_feed(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint8_t b = data[i];
        if (b == HK_DELIMITER) {
            if (s_rx_overflow) {
                drop(0u, HK_STATUS_BAD_LENGTH);
            } else if (s_rx_len > 0u) {
                handle_frame();
            } /* else: back-to-back delimiters are line idle */
            s_rx_len = 0u;
            s_rx_overflow = 0;
        } else if (s_rx_len < sizeof s_rx) {
            s_rx[s_rx_len++] = b;
        } else {
            s_rx_overflow = 1; /* keep discarding until the next delimiter: never overflow */
        }
    }
}

void hk_core_poll(void) {
    uint8_t buf[64];
    size_t n = hk_platform_read(buf, sizeof buf);
    if (n > 0u) {
        hk_core_feed(buf, n);
    }
}

void hk_core_init(void) {
    s_rx_len = 0u;
    s_rx_overflow = 0;
    for (unsigned i = 0; i < HK_RETRY_CACHE; i++) {
        s_cache[i].valid = 0;
    }
    s_cache_next = 0u;
    s_stats.inits++;
    hk_dispatch_init();
}

void hk_core_reset(void) {
    hk_dispatch_reset();
    hk_platform_reset();
    memset(&s_stats, 0, sizeof s_stats);
    hk_core_init();
}

void hk_link_count_invoke(void) { s_stats.invokes++; }

const hk_core_stats_t *hk_core_stats(void) { return &s_stats; }
