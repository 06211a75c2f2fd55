/* hk_cobs.h - Consistent Overhead Byte Stuffing (no 0x00 in the output). */
#ifndef HK_COBS_H
#define HK_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Encode len bytes of in into out (capacity out_cap). Returns the encoded length, 0 if it doesn't fit. */
size_t hk_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

/* Decode len bytes (no delimiter) into out (may alias in). Returns the decoded length, or -1 if malformed. */
long hk_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap);

#define HK_COBS_MAX_ENCODED(n) ((n) + ((n) + 253u) / 254u + 1u)

#endif /* HK_COBS_H */
