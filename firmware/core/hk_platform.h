/*
 * hk_platform.h - what the link core needs from a platform (board or host port).
 *
 * Implemented by platform/neuralspot (ns-usb CDC or ns-uart) and platform/host (a pty).
 * All functions are non-blocking or bounded; the core never waits forever.
 */
#ifndef HK_PLATFORM_H
#define HK_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Read up to len bytes that have arrived; returns the count (0 if none). Never blocks long. */
size_t hk_platform_read(uint8_t *buf, size_t len);

/* Write len bytes to the link; returns the count written (blocks at most until the link drains). */
size_t hk_platform_write(const uint8_t *buf, size_t len);

/* Monotonic microseconds, for timeouts. */
uint64_t hk_platform_micros(void);

/* Board name reported in HELLO (e.g. "apollo4p_evb"; "sim:apollo4p_evb" for the host port). */
const char *hk_platform_board(void);

/* Firmware build id reported in HELLO (git sha / build hash; never a timestamp). */
const char *hk_platform_build_id(void);

/* Soft reset requested by the host (RESET): re-initialise engine and link state. */
void hk_platform_reset(void);

#ifdef __cplusplus
}
#endif

#endif /* HK_PLATFORM_H */
