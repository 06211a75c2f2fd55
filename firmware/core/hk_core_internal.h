/*
 * hk_core_internal.h - the private interface between the link layer (hk_link.c: framing, retry
 * cache, transmit) and the command layer (hk_dispatch.c). Not for platforms: they use hk_core.h.
 */
#ifndef HK_CORE_INTERNAL_H
#define HK_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Little-endian field access: the wire format never depends on the CPU's byte order or alignment. */
static inline void hk_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void hk_put_u32(uint8_t *p, uint32_t v) {
    hk_put_u16(p, (uint16_t)v);
    hk_put_u16(p + 2, (uint16_t)(v >> 16));
}

static inline uint16_t hk_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t hk_get_u32(const uint8_t *p) {
    return (uint32_t)hk_get_u16(p) | ((uint32_t)hk_get_u16(p + 2) << 16);
}

/* (Re)initialise the engine and the command state (negotiated payload back to the default). */
void hk_dispatch_init(void);

/* The payload size negotiated by the last HELLO (HK_DEFAULT_PAYLOAD before any). */
uint16_t hk_dispatch_payload(void);

/*
 * Handle one request whose frame was valid. The answer's payload is written to rsp (room for
 * HK_MAX_PAYLOAD bytes) and its length to *rsp_len. Returns the status for the answer's header;
 * HK_STATUS_UNKNOWN_TYPE means "answer with a NACK".
 */
uint16_t hk_dispatch(uint8_t type, uint8_t flags, const uint8_t *req, size_t len, uint8_t *rsp, size_t *rsp_len);

/* 1 once after a RESET request was answered: the link then resets platform, engine and itself. */
int hk_dispatch_take_reset(void);

/* Tears the engine down (RESET); hk_core_init() then initialises everything again. */
void hk_dispatch_reset(void);

/* Counts an Invoke() for hk_core_stats(). */
void hk_link_count_invoke(void);

#endif /* HK_CORE_INTERNAL_H */
