/*
 * hk_ns_platform.h - what the neuralSPOT platform shares between its own files (not the core's API).
 */
#ifndef HK_NS_PLATFORM_H
#define HK_NS_PLATFORM_H

#ifdef __cplusplus
extern "C" {
#endif

#include <stdint.h>

/* Longest a write may wait for the host to drain the link before giving up (bounded, never hangs). */
#define HK_WRITE_TIMEOUT_US 500000u

/* Start the DWT (M4) / PMU (M55) cycle counter; call after the debug domain is powered. */
void hk_ns_cycles_init(void);

/* neuralSPOT core, power (maximum clock), the cycle counter's debug domain and the microsecond timer
 * (hk_ns_common.cc); 0 if the core did not start. */
int hk_ns_board_init(void);

/* With HK_LINK_UART=1: the EVB's COM UART at `baud` (0: the BSP's default) as hk_platform_read /
 * hk_platform_write; 0 if it did not start. */
int hk_ns_uart_init(uint32_t baud);

#ifdef __cplusplus
}
#endif

#endif /* HK_NS_PLATFORM_H */
