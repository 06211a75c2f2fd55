/* hk_crc32.h - CRC-32 (IEEE 802.3, reflected, as zlib.crc32). */
#ifndef HK_CRC32_H
#define HK_CRC32_H

#include <stddef.h>
#include <stdint.h>

uint32_t hk_crc32(uint32_t crc, const uint8_t *data, size_t len);

#endif /* HK_CRC32_H */
