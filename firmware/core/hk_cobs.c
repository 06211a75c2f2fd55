/* hk_cobs.c - COBS encoder/decoder (bounded; in-place decoding allowed). */
#include "hk_cobs.h"

size_t hk_cobs_encode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap) {
    if (out_cap < HK_COBS_MAX_ENCODED(len)) {
        return 0;
    }
    size_t code_pos = 0;
    size_t o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == 0u) {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
        } else {
            out[o++] = in[i];
            code++;
            /* A full block (254 data bytes) closes here, but only if more input follows: the
             * canonical encoding (Cheshire & Baker, as the host's `cobs` package) has no empty block
             * after a full one at the end. */
            if (code == 0xFFu && i + 1u < len) {
                out[code_pos] = code;
                code_pos = o++;
                code = 1;
            }
        }
    }
    out[code_pos] = code;
    return o;
}

long hk_cobs_decode(const uint8_t *in, size_t len, uint8_t *out, size_t out_cap) {
    size_t i = 0;
    size_t o = 0;
    while (i < len) {
        uint8_t code = in[i++];
        if (code == 0u) {
            return -1;
        }
        for (uint8_t k = 1; k < code; k++) {
            if (i >= len || in[i] == 0u || o >= out_cap) {
                return -1;
            }
            out[o++] = in[i++];
        }
        if (code != 0xFFu && i < len) {
            if (o >= out_cap) {
                return -1;
            }
            out[o++] = 0u;
        }
    }
    return (long)o;
}
