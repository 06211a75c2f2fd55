/*
 * hk_dut.h - the MLPerf Tiny / EEMBC "device under test" front end: the benchmark runner's text
 * protocol on the UART instead of hkdeploy's binary link, the same engine (engine/hk_engine.h).
 *
 * Host -> DUT: "command[ args]%" (no CR/LF needed; CR, LF and NUL are ignored), at most
 * HK_DUT_CMD_MAX characters before the '%'. DUT -> host: lines ending "\r\n"; every reply ends with
 * "m-ready". Commands: name, profile, help, timestamp, db load N, db <hex>, infer N [W], results.
 * Errors are lines "e-[...]". See docs/mlperf.md for the transcript.
 *
 * Platform needs: hk_platform_read/write/micros (core/hk_platform.h) and, for the energy mode,
 * hk_dut_platform_timestamp_pin(). No malloc; the input staging buffer comes from the caller.
 */
#ifndef HK_DUT_H
#define HK_DUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest command accepted (characters before the '%'); longer ones are answered with an error. */
#define HK_DUT_CMD_MAX 80u

/* Digits after the decimal point in m-results-[...] (each value correctly rounded, half-even). */
#define HK_DUT_RESULT_DECIMALS 6u

typedef struct {
    const char *name;      /* m-name-dut-[<name>], e.g. "hkdeploy-kws01" */
    const char *model_id;  /* m-model-[<id>]: kws01 | vww01 | ic01 | ad01 | custom */
    int energy_mode;       /* 1: timestamps are GPIO falling edges; 0: m-lap-us-N lines */
    uint8_t *input_buf;    /* staging buffer for db load (engine input is copied from it per run) */
    size_t input_cap;      /* its size in bytes (>= the model's input bytes) */
} hk_dut_config_t;

/* Initialise the engine and print the boot banner (timestamp mode, one timestamp, m-init-done,
 * m-ready). The config must outlive the DUT. */
void hk_dut_init(const hk_dut_config_t *cfg);

/* Read what has arrived (hk_platform_read) and run every complete command. Bounded. */
void hk_dut_poll(void);

/* Feed received bytes directly (for platforms that receive in a callback). */
void hk_dut_feed(const uint8_t *data, size_t len);

/* Forget a partly received command (e.g. the host closed the port in the middle of one). */
void hk_dut_discard_partial(void);

/* A diagnostic line "m-log-[text]" (engine messages). */
void hk_dut_log(const char *text);

/* Energy mode: drive the timestamp GPIO (level 0 = low, 1 = high). The front end pulls it low,
 * holds it at least 1 us (measured on hk_platform_micros) and releases it high: a falling edge. */
void hk_dut_platform_timestamp_pin(int level);

#ifdef __cplusplus
}
#endif

#endif /* HK_DUT_H */
