/* hk_core.c - receive framing, the retry cache and the command handlers. */
#include "hk_core.h"

#include <string.h>

#include "../engine/hk_engine.h"
#include "../protocol/hk_protocol.h"
#include "hk_cobs.h"
#include "hk_crc32.h"
#include "hk_platform.h"

#define BODY_MAX (HK_HEADER_SIZE + HK_MAX_PAYLOAD + HK_CRC_SIZE)
#define WIRE_MAX (HK_COBS_MAX_ENCODED(BODY_MAX) + 1u)

_Static_assert(HK_MAX_PAYLOAD >= HK_MIN_PAYLOAD, "HK_MAX_PAYLOAD below the protocol minimum");
_Static_assert(HK_MAX_PAYLOAD <= 0xFFFFu, "HK_MAX_PAYLOAD must fit the 16-bit length field");
_Static_assert(HK_PERF_MAX_RUNS >= 1u, "HK_PERF_MAX_RUNS");

static uint8_t s_rx[WIRE_MAX];      /* encoded frame being received (decoded in place) */
static size_t s_rx_len;
static int s_rx_overflow;
static uint8_t s_body[BODY_MAX];    /* response being built */
static uint8_t s_wire[WIRE_MAX];    /* last response on the wire: the retry cache */
static size_t s_wire_len;
static int s_cache_valid;
static uint8_t s_cache_type;
static uint16_t s_cache_seq;
static uint8_t s_event_wire[HK_COBS_MAX_ENCODED(HK_HEADER_SIZE + HK_MIN_PAYLOAD + HK_CRC_SIZE) + 1u];
static uint8_t s_event_body[HK_HEADER_SIZE + HK_MIN_PAYLOAD + HK_CRC_SIZE];

static hk_engine_info_t s_info;
static uint16_t s_payload = HK_DEFAULT_PAYLOAD;
static uint32_t s_in_received;
static uint32_t s_last_cycles;
static int s_reset_pending;
static hk_core_stats_t s_stats;

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    put_u16(p, (uint16_t)v);
    put_u16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get_u32(const uint8_t *p) { return (uint32_t)get_u16(p) | ((uint32_t)get_u16(p + 2) << 16); }

/* Frame body (header + payload already in body) -> wire bytes; returns the wire length. */
static size_t seal(uint8_t *body, size_t payload_len, uint8_t type, uint8_t flags, uint16_t seq, uint16_t status,
                   uint8_t *wire, size_t wire_cap) {
    body[0] = type;
    body[1] = flags;
    put_u16(body + 2, seq);
    put_u16(body + 4, status);
    put_u16(body + 6, (uint16_t)payload_len);
    size_t n = HK_HEADER_SIZE + payload_len;
    put_u32(body + n, hk_crc32(0u, body, n));
    size_t enc = hk_cobs_encode(body, n + HK_CRC_SIZE, wire, wire_cap - 1u);
    wire[enc] = HK_DELIMITER;
    return enc + 1u;
}

static void send_response(uint8_t type, uint16_t seq, uint16_t status, size_t payload_len) {
    s_wire_len = seal(s_body, payload_len, type, HK_FLAG_RESPONSE, seq, status, s_wire, sizeof s_wire);
    s_cache_valid = 1;
    s_cache_type = type;
    s_cache_seq = seq;
    (void)hk_platform_write(s_wire, s_wire_len);
}

static void send_nack(uint16_t seq, uint16_t status) {
    /* NACKs are not cached: the host retries the request, which must then really run. */
    size_t n = seal(s_event_body, 0u, HK_MSG_NACK, HK_FLAG_RESPONSE, seq, status, s_event_wire, sizeof s_event_wire);
    (void)hk_platform_write(s_event_wire, n);
}

void hk_core_log(const char *text) {
    size_t len = strlen(text);
    if (len > HK_MIN_PAYLOAD) {
        len = HK_MIN_PAYLOAD;
    }
    memcpy(s_event_body + HK_HEADER_SIZE, text, len);
    size_t n = seal(s_event_body, len, HK_MSG_LOG, HK_FLAG_EVENT, 0u, 0u, s_event_wire, sizeof s_event_wire);
    (void)hk_platform_write(s_event_wire, n);
}

static void tensor_to_wire(const hk_tensor_info_t *t, hk_wire_tensor_t *w) {
    memset(w, 0, sizeof *w);
    w->dtype = t->dtype;
    w->ndim = t->ndim;
    for (unsigned i = 0; i < HK_MAX_DIMS && i < 6u; i++) {
        w->dims[i] = t->dims[i];
    }
    w->scale = t->scale;
    w->zero_point = t->zero_point;
    w->nbytes = t->bytes;
}

/* Fixed-width text field: copied up to its size, NUL-padded (not necessarily NUL-terminated). */
static void copy_field(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; i < size && src[i] != '\0'; i++) {
        dst[i] = src[i];
    }
    for (; i < size; i++) {
        dst[i] = '\0';
    }
}

static uint32_t cycles_to_us(uint32_t cycles) {
    uint32_t per_us = s_info.cpu_hz / 1000000u;
    return per_us ? cycles / per_us : 0u;
}

static uint16_t on_hello(const uint8_t *req, size_t len, size_t *out_len) {
    if (len != sizeof(hk_hello_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint16_t host_max = get_u16(req);
    uint16_t version = get_u16(req + 2);
    uint16_t negotiated = host_max < HK_MAX_PAYLOAD ? host_max : (uint16_t)HK_MAX_PAYLOAD;
    if (negotiated < HK_MIN_PAYLOAD) {
        negotiated = HK_MIN_PAYLOAD;
    }
    hk_hello_rsp_t rsp;
    memset(&rsp, 0, sizeof rsp);
    rsp.protocol_version = HK_PROTOCOL_VERSION;
    rsp.max_payload = negotiated;
    rsp.rx_credits = HK_RX_CREDITS;
    rsp.alloc_status = (int16_t)s_info.status;
    rsp.arena_size = s_info.arena_size;
    rsp.arena_used = s_info.arena_used;
    rsp.model_size = s_info.model_size;
    rsp.cpu_hz = s_info.cpu_hz;
    memcpy(rsp.model_sha256, s_info.model_sha256, sizeof rsp.model_sha256);
    tensor_to_wire(&s_info.input, &rsp.input);
    tensor_to_wire(&s_info.output, &rsp.output);
    copy_field(rsp.board, sizeof rsp.board, hk_platform_board());
    copy_field(rsp.build_id, sizeof rsp.build_id, hk_platform_build_id());
    memcpy(s_body + HK_HEADER_SIZE, &rsp, sizeof rsp);
    *out_len = sizeof rsp;
    if (version != HK_PROTOCOL_VERSION) {
        return HK_STATUS_VERSION;
    }
    s_payload = negotiated;
    return HK_STATUS_OK;
}

/* Write one input chunk; returns a status. */
static uint16_t write_input(const uint8_t *req, size_t len, int last) {
    if (len < 4u) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint32_t offset = get_u32(req);
    size_t n = len - 4u;
    if ((uint64_t)offset + n > s_info.input.bytes) {
        return HK_STATUS_BAD_OFFSET;
    }
    memcpy(hk_engine_input() + offset, req + 4, n);
    s_in_received = offset + (uint32_t)n;
    if (last && s_in_received != s_info.input.bytes) {
        return HK_STATUS_BAD_OFFSET; /* the last chunk must complete the tensor */
    }
    return HK_STATUS_OK;
}

static uint16_t invoke(void) {
    uint32_t cycles = 0;
    int32_t st = hk_engine_invoke(&cycles);
    s_stats.invokes++;
    s_last_cycles = cycles;
    return st == HK_ENGINE_OK ? HK_STATUS_OK : (uint16_t)st;
}

static size_t output_chunk(uint32_t offset, size_t room, uint8_t *dst) {
    size_t n = s_info.output.bytes > offset ? s_info.output.bytes - offset : 0u;
    if (n > room) {
        n = room;
    }
    memcpy(dst, hk_engine_output() + offset, n);
    return n;
}

static uint16_t on_run(const uint8_t *req, size_t len, uint8_t flags, size_t *out_len) {
    int more = (flags & HK_FLAG_MORE) != 0u;
    uint16_t st = write_input(req, len, !more);
    uint8_t *p = s_body + HK_HEADER_SIZE;
    if (st != HK_STATUS_OK) {
        return st;
    }
    if (more) { /* an acknowledged chunk: the answer grants the next credit */
        hk_set_input_rsp_t ack = {s_in_received, HK_RX_CREDITS};
        memcpy(p, &ack, sizeof ack);
        *out_len = sizeof ack;
        return HK_STATUS_OK;
    }
    st = invoke();
    if (st != HK_STATUS_OK) {
        return st;
    }
    put_u32(p, s_last_cycles);
    put_u32(p + 4, cycles_to_us(s_last_cycles));
    put_u32(p + 8, s_info.output.bytes);
    *out_len = sizeof(hk_run_rsp_t) + output_chunk(0u, s_payload - sizeof(hk_run_rsp_t), p + sizeof(hk_run_rsp_t));
    return HK_STATUS_OK;
}

static void sort_u32(uint32_t *v, unsigned n) {
    for (unsigned i = 1; i < n; i++) {
        uint32_t x = v[i];
        unsigned j = i;
        while (j > 0u && v[j - 1u] > x) {
            v[j] = v[j - 1u];
            j--;
        }
        v[j] = x;
    }
}

static uint16_t on_perf(const uint8_t *req, size_t len, size_t *out_len) {
    static uint32_t cycles[HK_PERF_MAX_RUNS];
    if (len != sizeof(hk_perf_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint16_t warmup = get_u16(req);
    uint16_t runs = get_u16(req + 2);
    if (runs == 0u || runs > HK_PERF_MAX_RUNS) {
        return HK_STATUS_BAD_REQUEST;
    }
    for (uint16_t i = 0; i < warmup; i++) {
        uint16_t st = invoke();
        if (st != HK_STATUS_OK) {
            return st;
        }
    }
    for (uint16_t i = 0; i < runs; i++) {
        uint16_t st = invoke();
        if (st != HK_STATUS_OK) {
            return st;
        }
        cycles[i] = s_last_cycles;
    }
    sort_u32(cycles, runs);
    uint8_t *p = s_body + HK_HEADER_SIZE;
    put_u16(p, runs);
    put_u32(p + 2, cycles[0]);
    put_u32(p + 6, (runs % 2u) ? cycles[runs / 2u] : (uint32_t)(((uint64_t)cycles[runs / 2u - 1u] + cycles[runs / 2u]) / 2u));
    put_u32(p + 10, cycles[runs - 1u]);
    put_u32(p + 14, s_info.cpu_hz);
    *out_len = sizeof(hk_perf_rsp_t);
    return HK_STATUS_OK;
}

static uint16_t dispatch(uint8_t type, uint8_t flags, const uint8_t *req, size_t len, size_t *out_len) {
    *out_len = 0u;
    if (type == HK_MSG_HELLO) {
        return on_hello(req, len, out_len);
    }
    if (type == HK_MSG_RESET) {
        s_reset_pending = 1;
        return HK_STATUS_OK;
    }
    if (s_info.status != HK_ENGINE_OK) {
        return HK_STATUS_ENGINE_NOT_READY;
    }
    uint8_t *p = s_body + HK_HEADER_SIZE;
    switch (type) {
    case HK_MSG_SET_INPUT: {
        uint16_t st = write_input(req, len, (flags & HK_FLAG_MORE) == 0u);
        hk_set_input_rsp_t ack = {s_in_received, HK_RX_CREDITS};
        memcpy(p, &ack, sizeof ack);
        *out_len = sizeof ack;
        return st;
    }
    case HK_MSG_INVOKE: {
        if (len != 0u) {
            return HK_STATUS_BAD_REQUEST;
        }
        uint16_t st = invoke();
        put_u32(p, s_last_cycles);
        put_u32(p + 4, cycles_to_us(s_last_cycles));
        *out_len = sizeof(hk_invoke_rsp_t);
        return st;
    }
    case HK_MSG_GET_OUTPUT: {
        if (len != sizeof(hk_get_output_req_t)) {
            return HK_STATUS_BAD_REQUEST;
        }
        uint32_t offset = get_u32(req);
        uint16_t want = get_u16(req + 4);
        if (offset > s_info.output.bytes) {
            return HK_STATUS_BAD_OFFSET;
        }
        size_t room = s_payload - sizeof(hk_get_output_rsp_t);
        put_u32(p, offset);
        *out_len = sizeof(hk_get_output_rsp_t) + output_chunk(offset, want < room ? want : room, p + 4);
        return HK_STATUS_OK;
    }
    case HK_MSG_RUN:
        return on_run(req, len, flags, out_len);
    case HK_MSG_PERF:
        return on_perf(req, len, out_len);
    default:
        return HK_STATUS_UNKNOWN_TYPE;
    }
}

static void handle_frame(void) {
    long n = hk_cobs_decode(s_rx, s_rx_len, s_rx, sizeof s_rx);
    if (n < (long)(HK_HEADER_SIZE + HK_CRC_SIZE)) {
        s_stats.frames_bad++;
        send_nack(0u, n < 0 ? HK_STATUS_BAD_CRC : HK_STATUS_BAD_LENGTH);
        return;
    }
    size_t body = (size_t)n - HK_CRC_SIZE;
    if (hk_crc32(0u, s_rx, body) != get_u32(s_rx + body)) {
        s_stats.frames_bad++;
        send_nack(0u, HK_STATUS_BAD_CRC); /* the seq can't be trusted either */
        return;
    }
    uint8_t type = s_rx[0];
    uint8_t flags = s_rx[1];
    uint16_t seq = get_u16(s_rx + 2);
    uint16_t length = get_u16(s_rx + 6);
    if (length != body - HK_HEADER_SIZE) {
        s_stats.frames_bad++;
        send_nack(seq, HK_STATUS_BAD_LENGTH);
        return;
    }
    s_stats.frames_ok++;
    if (flags & (HK_FLAG_RESPONSE | HK_FLAG_EVENT)) {
        return; /* the device takes requests only */
    }
    if (s_cache_valid && type == s_cache_type && seq == s_cache_seq) {
        s_stats.cache_hits++; /* a retry: answer again without running anything twice */
        (void)hk_platform_write(s_wire, s_wire_len);
        return;
    }
    if (length > s_payload && !(type == HK_MSG_HELLO)) {
        send_nack(seq, HK_STATUS_PAYLOAD_TOO_BIG);
        return;
    }
    size_t out_len = 0;
    uint16_t status = dispatch(type, flags, s_rx + HK_HEADER_SIZE, length, &out_len);
    if (status == HK_STATUS_UNKNOWN_TYPE) {
        send_nack(seq, status);
        return;
    }
    send_response(type, seq, status, out_len);
    if (s_reset_pending) {
        s_reset_pending = 0;
        hk_engine_reset();
        hk_platform_reset();
        hk_core_init();
    }
}

void hk_core_feed(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        uint8_t b = data[i];
        if (b == HK_DELIMITER) {
            if (s_rx_overflow) {
                s_stats.frames_bad++;
                send_nack(0u, HK_STATUS_BAD_LENGTH);
            } else if (s_rx_len > 0u) {
                handle_frame();
            }
            s_rx_len = 0u;
            s_rx_overflow = 0;
        } else if (s_rx_len < sizeof s_rx) {
            s_rx[s_rx_len++] = b;
        } else {
            s_rx_overflow = 1;
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
    s_cache_valid = 0;
    s_payload = HK_DEFAULT_PAYLOAD;
    s_in_received = 0u;
    memset(&s_info, 0, sizeof s_info);
    (void)hk_engine_init(&s_info);
}

const hk_core_stats_t *hk_core_stats(void) { return &s_stats; }
