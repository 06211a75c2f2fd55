/*
 * hk_core.h - the device side of the hkdeploy link: framing, retry cache, commands.
 *
 * C11, no malloc, no SDK. The platform provides hk_platform.h, the engine hk_engine.h.
 * Usage: hk_core_init() once at boot (after the platform is up), then call hk_core_poll() in the
 * main loop; it reads what arrived, answers complete packets and returns (never blocks on input).
 */
#ifndef HK_CORE_H
#define HK_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest payload this firmware accepts or sends (the host may negotiate less in HELLO). Large
 * enough for a 1250-byte int8 frame in one RUN packet by default. */
#ifndef HK_MAX_PAYLOAD
#define HK_MAX_PAYLOAD 1600u
#endif

/* Requests the host may have unanswered at once (credit-based flow control, granted in HELLO). The
 * core still handles one packet at a time, in arrival order; what waits meanwhile is held by the
 * platform's receive path, which must therefore hold HK_RX_CREDITS whole frames (HK_RX_CREDITS x
 * (HK_MAX_PAYLOAD + 20) bytes) or flow-control the line: a pty or USB CDC does, a bare UART ring
 * buffer must be sized for it (the neuralSPOT UART build sets 1). The retry cache keeps the last
 * 2 x HK_RX_CREDITS - 1 answers (one wire frame, HK_MAX_PAYLOAD + ~20 B, each), so a pipelining
 * host's resent request is still answered from the cache, never run twice (hk_link.c). 1 = one
 * request per round trip, one cached answer. */
#ifndef HK_RX_CREDITS
#define HK_RX_CREDITS 4u
#endif

/* Most PERF runs measured in one request (the median needs them stored). */
#ifndef HK_PERF_MAX_RUNS
#define HK_PERF_MAX_RUNS 64u
#endif

/* Most PERF warm-up runs in one request: a request is answered in bounded time (65,535 warm-up
 * invokes would keep the device busy for most of an hour with the link unanswered). */
#ifndef HK_PERF_MAX_WARMUP
#define HK_PERF_MAX_WARMUP 64u
#endif

/* Most operators one PROFILE run records (8 bytes of RAM each); op_count still says how many the
 * model has. */
#ifndef HK_PROFILE_MAX_OPS
#define HK_PROFILE_MAX_OPS 256u
#endif

void hk_core_init(void);
void hk_core_poll(void);

/* What a reset button does: the engine is torn down, every link state and counter is cleared, then
 * the core starts again as after boot (the host must HELLO again). The host port calls it on SIGUSR1. */
void hk_core_reset(void);

/* Feed received bytes directly (for platforms that receive in an interrupt or callback). */
void hk_core_feed(const uint8_t *data, size_t len);

/* Longest text one hk_core_log() call sends, in LOG events of at most HK_MIN_PAYLOAD bytes each. */
#ifndef HK_LOG_MAX_EVENTS
#define HK_LOG_MAX_EVENTS 4u
#endif

/* Send text as LOG events: pieces of at most HK_MIN_PAYLOAD bytes, at most HK_LOG_MAX_EVENTS of
 * them (longer text is cut). Safe to call from engine error paths. */
void hk_core_log(const char *text);

/* Counters for diagnostics and tests. */
typedef struct {
    uint32_t frames_ok;
    uint32_t frames_bad;
    uint32_t cache_hits;
    uint32_t invokes;
    uint32_t nacks;
    uint32_t inits; /* hk_core_init() calls: 1 after boot, +1 per RESET */
} hk_core_stats_t;

const hk_core_stats_t *hk_core_stats(void);

#ifdef __cplusplus
}
#endif

#endif /* HK_CORE_H */
