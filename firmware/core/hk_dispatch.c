/*
 * hk_dispatch.c - the command layer of the device: HELLO (payload negotiation, device and model
 * description), SET_INPUT / INVOKE / GET_OUTPUT, RUN (chunked input, Invoke(), output), PERF and
 * RESET, PROFILE (per-operator cycles) and TENSOR (an operator's output), on top of the engine API
 * (hk_engine.h). Every error path returns a protocol status.
 */
#include <string.h>

#include "../engine/hk_engine.h"
#include "../protocol/hk_protocol.h"
#include "hk_core.h"
#include "hk_core_internal.h"
#include "hk_platform.h"

_Static_assert(HK_PERF_MAX_RUNS >= 1u && HK_PERF_MAX_RUNS <= 0xFFFFu, "HK_PERF_MAX_RUNS");
_Static_assert(HK_PERF_MAX_WARMUP <= 0xFFFFu, "HK_PERF_MAX_WARMUP");

/* The engine's last error text (TFLM's message), repeated as a LOG on HELLO while init has failed,
 * so a host that connects after boot still learns why. Engines without one keep this default. */
__attribute__((weak)) const char *hk_engine_error_text(void) { return NULL; }

/* Engines without a per-operator profile or tensor capture keep these defaults (HELLO's features
 * say so; the host does not ask). */
__attribute__((weak)) int32_t hk_engine_profile(hk_op_cycles_t *ops, uint16_t max_ops, uint32_t *total) {
    (void)ops;
    (void)max_ops;
    (void)total;
    return HK_ENGINE_ERR_UNSUPPORTED;
}

__attribute__((weak)) int32_t hk_engine_capture(uint16_t op, uint32_t offset, uint8_t *dst, uint32_t *len,
                                                uint32_t *nbytes, uint16_t *dtype, uint16_t *tensor_index) {
    (void)op;
    (void)offset;
    (void)dst;
    (void)len;
    (void)nbytes;
    (void)dtype;
    (void)tensor_index;
    return HK_ENGINE_ERR_UNSUPPORTED;
}
_Static_assert(HK_ENGINE_FEATURE_PROFILE == HK_FEATURE_PROFILE && HK_ENGINE_FEATURE_TENSOR == HK_FEATURE_TENSOR,
               "engine features are the wire's");
/* Platforms without reset-surviving RAM or a fault record keep these defaults (hk_platform.h). */
__attribute__((weak)) volatile uint32_t *hk_platform_noinit_word(void) { return NULL; }
__attribute__((weak)) const char *hk_platform_fault_text(void) { return NULL; }
__attribute__((weak)) void hk_platform_init_guard(int armed) { (void)armed; }

/* The marker in hk_platform_noinit_word() while hk_engine_init runs ("INIT"); any other value means
 * the previous boot did not die inside it (a random power-on value matches once in 2^32). */
#define HK_INIT_IN_PROGRESS 0x54494E49u
/* "init fault: " + the platform's fault line (kind, CFSR bits, PC), kept for every later HELLO */
#define HK_INIT_FAULT_TEXT 80u
_Static_assert(HK_MAX_DIMS == 6, "hk_wire_tensor_t carries 6 dims");
_Static_assert(sizeof(hk_hello_rsp_t) <= HK_DEFAULT_PAYLOAD, "HELLO (exempt from negotiation) must fit the default payload");

static hk_engine_info_t s_info;
static uint16_t s_payload = HK_DEFAULT_PAYLOAD;
static uint32_t s_in_received;
static uint32_t s_last_cycles;
static uint32_t s_counter_hz; /* hk_platform_counter_hz(), read once per init */
static int s_reset_pending;
static hk_op_cycles_t s_profile[HK_PROFILE_MAX_OPS]; /* the last PROFILE run, paged by first_op > 0 */
static uint16_t s_profile_recorded;                  /* entries of s_profile valid (0: no run yet) */
static uint32_t s_profile_total;
static char s_init_fault[HK_INIT_FAULT_TEXT]; /* "" unless this boot skipped a crashing init */

static void tensor_to_wire(const hk_tensor_info_t *t, hk_wire_tensor_t *w) {
    memset(w, 0, sizeof *w);
    w->dtype = t->dtype;
    w->ndim = t->ndim;
    for (unsigned i = 0; i < HK_MAX_DIMS; i++) {
        w->dims[i] = t->dims[i];
    }
    w->scale = t->scale;
    w->zero_point = t->zero_point;
    w->nbytes = t->bytes;
}

/* Fixed-width text field: copied up to its size, NUL-padded (not necessarily NUL-terminated). */
static void copy_field(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src != NULL && i < size && src[i] != '\0'; i++) {
        dst[i] = src[i];
    }
    for (; i < size; i++) {
        dst[i] = '\0';
    }
}

static uint32_t cycles_to_us(uint32_t cycles) {
    return s_counter_hz ? (uint32_t)((uint64_t)cycles * 1000000u / s_counter_hz) : 0u;
}

static uint16_t on_hello(const uint8_t *req, size_t len, uint8_t *rsp_buf, size_t *rsp_len) {
    if (len != sizeof(hk_hello_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint16_t host_max = hk_get_u16(req);
    uint16_t version = hk_get_u16(req + 2);
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
    rsp.cpu_hz = s_counter_hz;
    rsp.counter_kind = hk_platform_counter_kind();
    rsp.op_count = s_info.op_count;
    rsp.features = s_info.features;
    memcpy(rsp.model_sha256, s_info.model_sha256, sizeof rsp.model_sha256);
    tensor_to_wire(&s_info.input, &rsp.input);
    tensor_to_wire(&s_info.output, &rsp.output);
    copy_field(rsp.board, sizeof rsp.board, hk_platform_board());
    copy_field(rsp.build_id, sizeof rsp.build_id, hk_platform_build_id());
    /* The packed struct's memory is the wire layout on a little-endian CPU (all Cortex-M are). */
    memcpy(rsp_buf, &rsp, sizeof rsp);
    *rsp_len = sizeof rsp;
    if (s_info.status == HK_ENGINE_ERR_INIT_FAULT) {
        /* the engine never ran this boot: its error text is not the reason, the fault is */
        hk_core_log("engine init crashed on the previous boot: not retried");
        if (s_init_fault[0] != '\0') {
            hk_core_log(s_init_fault);
        }
    } else if (s_info.status != HK_ENGINE_OK) {
        const char *why = hk_engine_error_text();
        if (why != NULL) {
            hk_core_log(why); /* a LOG event before the answer: the reason init failed */
        }
    }
    if (version != HK_PROTOCOL_VERSION) {
        return HK_STATUS_VERSION; /* described anyway, so the host can name both versions */
    }
    s_payload = negotiated;
    return HK_STATUS_OK;
}

/*
 * Write one input chunk (offset + data). Chunks fill the tensor from offset 0 without gaps: a chunk
 * at offset 0 starts a new tensor, any other must start within what was received (rewriting bytes
 * already there is harmless, e.g. a resent chunk), and the last one must end at the tensor's end.
 * So Invoke() never runs on an input with a hole left by a lost chunk.
 */
static uint16_t write_input(const uint8_t *req, size_t len, int last) {
    if (len < sizeof(hk_set_input_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint32_t offset = hk_get_u32(req);
    size_t n = len - sizeof(hk_set_input_req_t);
    if ((uint64_t)offset + n > s_info.input.bytes) {
        return HK_STATUS_BAD_OFFSET;
    }
    if (offset == 0u) {
        s_in_received = 0u;
    } else if (offset > s_in_received) {
        return HK_STATUS_BAD_OFFSET; /* a gap: an earlier chunk is missing */
    }
    memcpy(hk_engine_input() + offset, req + sizeof(hk_set_input_req_t), n);
    if (offset + (uint32_t)n > s_in_received) {
        s_in_received = offset + (uint32_t)n;
    }
    if (last && (s_in_received != s_info.input.bytes || offset + (uint32_t)n != s_info.input.bytes)) {
        return HK_STATUS_BAD_OFFSET; /* the last chunk must complete the tensor */
    }
    return HK_STATUS_OK;
}

static size_t chunk_ack(uint8_t *rsp) {
    hk_put_u32(rsp, s_in_received);
    hk_put_u16(rsp + 4, (uint16_t)HK_RX_CREDITS);
    return sizeof(hk_set_input_rsp_t);
}

static uint16_t invoke(void) {
    uint32_t cycles = 0u;
    int32_t st = hk_engine_invoke(&cycles);
    hk_link_count_invoke();
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

static uint16_t on_run(const uint8_t *req, size_t len, uint8_t flags, uint8_t *rsp, size_t *rsp_len) {
    int more = (flags & HK_FLAG_MORE) != 0u;
    uint16_t st = write_input(req, len, !more);
    if (st != HK_STATUS_OK) {
        return st;
    }
    if (more) { /* a chunk: acknowledged with the window, like SET_INPUT */
        *rsp_len = chunk_ack(rsp);
        return HK_STATUS_OK;
    }
    st = invoke();
    if (st != HK_STATUS_OK) {
        return st;
    }
    hk_put_u32(rsp, s_last_cycles);
    hk_put_u32(rsp + 4, cycles_to_us(s_last_cycles));
    hk_put_u32(rsp + 8, s_info.output.bytes);
    size_t head = sizeof(hk_run_rsp_t);
    *rsp_len = head + output_chunk(0u, s_payload - head, rsp + head);
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

static uint16_t on_perf(const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len) {
    static uint32_t cycles[HK_PERF_MAX_RUNS]; /* static: kept off the (small) main stack */
    if (len != sizeof(hk_perf_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint16_t warmup = hk_get_u16(req);
    uint16_t runs = hk_get_u16(req + 2);
    if (runs == 0u || runs > HK_PERF_MAX_RUNS || warmup > HK_PERF_MAX_WARMUP) {
        return HK_STATUS_BAD_REQUEST;
    }
    for (uint32_t i = 0; i < (uint32_t)warmup + runs; i++) {
        uint16_t st = invoke();
        if (st != HK_STATUS_OK) {
            return st;
        }
        if (i >= warmup) {
            cycles[i - warmup] = s_last_cycles;
        }
    }
    sort_u32(cycles, runs);
    uint32_t median = (runs % 2u) ? cycles[runs / 2u]
                                  : (uint32_t)(((uint64_t)cycles[runs / 2u - 1u] + cycles[runs / 2u]) / 2u);
    hk_put_u16(rsp, runs);
    hk_put_u32(rsp + 2, cycles[0]);
    hk_put_u32(rsp + 6, median);
    hk_put_u32(rsp + 10, cycles[runs - 1u]);
    hk_put_u32(rsp + 14, s_counter_hz);
    hk_put_u32(rsp + 18, cycles_to_us(cycles[0]));
    hk_put_u32(rsp + 22, cycles_to_us(median));
    hk_put_u32(rsp + 26, cycles_to_us(cycles[runs - 1u]));
    *rsp_len = sizeof(hk_perf_rsp_t);
    return HK_STATUS_OK;
}

/*
 * PROFILE: first_op 0 runs one timed Invoke() (the engine times each operator) and keeps the
 * entries; every request answers as many entries from first_op on as fit the payload.
 */
static uint16_t on_profile(const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len) {
    if (len != sizeof(hk_profile_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint16_t first = hk_get_u16(req);
    if (first == 0u) {
        uint32_t total = 0u;
        s_profile_recorded = 0u;
        int32_t st = hk_engine_profile(s_profile, (uint16_t)HK_PROFILE_MAX_OPS, &total);
        if (st != HK_ENGINE_OK) {
            return (uint16_t)st;
        }
        hk_link_count_invoke();
        s_profile_total = total;
        s_profile_recorded = s_info.op_count < HK_PROFILE_MAX_OPS ? s_info.op_count : (uint16_t)HK_PROFILE_MAX_OPS;
    } else if (first >= s_profile_recorded) {
        return HK_STATUS_BAD_REQUEST; /* no run to page through, or past its end */
    }
    size_t head = sizeof(hk_profile_rsp_t);
    size_t fit = (s_payload - head) / sizeof(hk_wire_op_t);
    size_t n = s_profile_recorded - first;
    if (n > fit) {
        n = fit;
    }
    hk_put_u16(rsp, s_info.op_count);
    hk_put_u16(rsp + 2, s_profile_recorded);
    hk_put_u16(rsp + 4, first);
    hk_put_u16(rsp + 6, 0u);
    hk_put_u32(rsp + 8, s_profile_total);
    for (size_t i = 0; i < n; i++) {
        uint8_t *e = rsp + head + i * sizeof(hk_wire_op_t);
        hk_put_u16(e, s_profile[first + i].builtin_code);
        hk_put_u16(e + 2, 0u);
        hk_put_u32(e + 4, s_profile[first + i].cycles);
    }
    *rsp_len = head + n * sizeof(hk_wire_op_t);
    return HK_STATUS_OK;
}

/* TENSOR: one Invoke() on the current input; a chunk of an operator's output as it was computed. */
static uint16_t on_tensor(const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len) {
    if (len != sizeof(hk_tensor_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint32_t offset = hk_get_u32(req);
    uint16_t op = hk_get_u16(req + 4);
    uint16_t want = hk_get_u16(req + 6);
    if (op >= s_info.op_count) {
        return HK_STATUS_BAD_REQUEST;
    }
    size_t head = sizeof(hk_tensor_rsp_t);
    uint32_t n = (uint32_t)(s_payload - head);
    if (want < n) {
        n = want;
    }
    uint32_t nbytes = 0u;
    uint16_t dtype = 0u;
    uint16_t tensor = 0u;
    int32_t st = hk_engine_capture(op, offset, rsp + head, &n, &nbytes, &dtype, &tensor);
    if (st != HK_ENGINE_OK) {
        return (uint16_t)st;
    }
    hk_link_count_invoke();
    if (offset > nbytes) {
        return HK_STATUS_BAD_OFFSET;
    }
    hk_put_u32(rsp, offset);
    hk_put_u32(rsp + 4, nbytes);
    hk_put_u16(rsp + 8, op);
    hk_put_u16(rsp + 10, tensor);
    hk_put_u16(rsp + 12, dtype);
    *rsp_len = head + n;
    return HK_STATUS_OK;
}

static uint16_t on_get_output(const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len) {
    if (len != sizeof(hk_get_output_req_t)) {
        return HK_STATUS_BAD_REQUEST;
    }
    uint32_t offset = hk_get_u32(req);
    uint16_t want = hk_get_u16(req + 4);
    if (offset > s_info.output.bytes) {
        return HK_STATUS_BAD_OFFSET;
    }
    size_t head = sizeof(hk_get_output_rsp_t);
    size_t room = s_payload - head;
    hk_put_u32(rsp, offset);
    *rsp_len = head + output_chunk(offset, want < room ? want : room, rsp + head);
    return HK_STATUS_OK;
}

static uint16_t on_stats(size_t len, uint8_t *rsp, size_t *rsp_len) {
    if (len != 0u) {
        return HK_STATUS_BAD_REQUEST;
    }
    const hk_core_stats_t *st = hk_core_stats();
    hk_put_u32(rsp, st->frames_ok);
    hk_put_u32(rsp + 4, st->frames_bad);
    hk_put_u32(rsp + 8, st->cache_hits);
    hk_put_u32(rsp + 12, st->invokes);
    hk_put_u32(rsp + 16, st->nacks);
    hk_put_u32(rsp + 20, st->inits);
    *rsp_len = sizeof(hk_stats_rsp_t);
    return HK_STATUS_OK;
}

uint16_t hk_dispatch(uint8_t type, uint8_t flags, const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len) {
    *rsp_len = 0u;
    switch (type) {
    case HK_MSG_HELLO:
        return on_hello(req, len, rsp, rsp_len);
    case HK_MSG_RESET:
        s_reset_pending = 1;
        return HK_STATUS_OK;
    case HK_MSG_STATS:
        return on_stats(len, rsp, rsp_len);
    case HK_MSG_SET_INPUT:
    case HK_MSG_INVOKE:
    case HK_MSG_GET_OUTPUT:
    case HK_MSG_RUN:
    case HK_MSG_PERF:
    case HK_MSG_PROFILE:
    case HK_MSG_TENSOR:
        break;
    default:
        return HK_STATUS_UNKNOWN_TYPE;
    }
    if (s_info.status != HK_ENGINE_OK) {
        return HK_STATUS_ENGINE_NOT_READY; /* never touch an engine whose AllocateTensors failed */
    }
    switch (type) {
    case HK_MSG_SET_INPUT: {
        uint16_t st = write_input(req, len, (flags & HK_FLAG_MORE) == 0u);
        *rsp_len = chunk_ack(rsp);
        return st;
    }
    case HK_MSG_INVOKE: {
        if (len != 0u) {
            return HK_STATUS_BAD_REQUEST;
        }
        uint16_t st = invoke();
        hk_put_u32(rsp, s_last_cycles);
        hk_put_u32(rsp + 4, cycles_to_us(s_last_cycles));
        *rsp_len = sizeof(hk_invoke_rsp_t);
        return st;
    }
    case HK_MSG_GET_OUTPUT:
        return on_get_output(req, len, rsp, rsp_len);
    case HK_MSG_RUN:
        return on_run(req, len, flags, rsp, rsp_len);
    case HK_MSG_PROFILE:
        return on_profile(req, len, rsp, rsp_len);
    case HK_MSG_TENSOR:
        return on_tensor(req, len, rsp, rsp_len);
    default: /* HK_MSG_PERF */
        return on_perf(req, len, rsp, rsp_len);
    }
}

uint16_t hk_dispatch_payload(void) { return s_payload; }

int hk_dispatch_take_reset(void) {
    int pending = s_reset_pending;
    s_reset_pending = 0;
    return pending;
}

void hk_dispatch_reset(void) { hk_engine_reset(); }

/* The previous boot died inside hk_engine_init: do not run it again (it would crash again, a reset
 * loop with a link that never answers). The marker is cleared, so the next init (a host RESET, the
 * reset button) tries once more. */
static void skip_crashed_init(void) {
    s_info.status = HK_ENGINE_ERR_INIT_FAULT;
    memset(s_init_fault, 0, sizeof s_init_fault);
    const char *fault = hk_platform_fault_text();
    if (fault != NULL) {
        static const char prefix[] = "init fault: ";
        size_t n = sizeof prefix - 1u;
        memcpy(s_init_fault, prefix, n);
        for (size_t i = 0; n < sizeof s_init_fault - 1u && fault[i] != '\0'; i++) {
            s_init_fault[n++] = fault[i];
        }
    }
}

void hk_dispatch_init(void) {
    s_payload = HK_DEFAULT_PAYLOAD;
    s_in_received = 0u;
    s_last_cycles = 0u;
    s_reset_pending = 0;
    s_profile_recorded = 0u;
    s_profile_total = 0u;
    memset(&s_info, 0, sizeof s_info);
    s_init_fault[0] = '\0';
    s_counter_hz = hk_platform_counter_hz();
    volatile uint32_t *mark = hk_platform_noinit_word();
    if (mark != NULL && *mark == HK_INIT_IN_PROGRESS) {
        *mark = 0u;
        skip_crashed_init();
        return;
    }
    if (mark != NULL) {
        *mark = HK_INIT_IN_PROGRESS;
        __asm__ volatile("" ::: "memory"); /* the marker is stored before any of the init runs */
    }
    hk_platform_init_guard(1);
    (void)hk_engine_init(&s_info);
    hk_platform_init_guard(0);
    if (mark != NULL) {
        __asm__ volatile("" ::: "memory");
        *mark = 0u;
    }
}
