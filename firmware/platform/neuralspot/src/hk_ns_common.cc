/*
 * hk_ns_common.cc - what both neuralSPOT apps need from the board: the link firmware (hk_main.cc) and
 * the MLPerf Tiny DUT (hk_dut_main.cc). Core, power and cycle-counter bring-up (hk_ns_board_init),
 * the microsecond clock, the board's identity and, with HK_LINK_UART=1 (the DUT always), the EVB's
 * COM UART as the platform's read/write for both HAL families (Apollo3's transfer struct names a
 * direction, Apollo4/5's a kind).
 */
#include <stdint.h>
#include <string.h>

#include "ns_ambiqsuite_harness.h"
#include "ns_core.h"
#include "ns_peripherals_power.h"
#include "ns_timer.h"
#if HK_LINK_UART
#include "ns_uart.h"
#endif

#include "../../../core/hk_platform.h"
#include "hk_ns_platform.h"

#ifndef HK_BOARD_NAME
#define HK_BOARD_NAME "neuralspot"
#endif
#ifndef HK_BUILD_ID
#define HK_BUILD_ID "unknown"
#endif

static ns_timer_config_t s_timer = {
    .api = &ns_timer_V1_0_0,
    .timer = NS_TIMER_COUNTER,
    .enableInterrupt = false,
    .periodInMicroseconds = 0,
    .callback = NULL,
};

uint64_t hk_platform_micros(void) {
    /* the 32-bit microsecond ticker wraps every ~71 minutes: extend it (called often enough) */
    static uint32_t last;
    static uint64_t high;
    uint32_t now = ns_us_ticker_read(&s_timer);
    if (now < last) {
        high += 1ull << 32;
    }
    last = now;
    return high | now;
}

const char *hk_platform_board(void) { return HK_BOARD_NAME; }
const char *hk_platform_build_id(void) { return HK_BUILD_ID; }
void hk_platform_reset(void) {} /* the core re-initialises link and engine state itself */

/* The engine times Invoke() with hk_platform_cycles(): the DWT (Cortex-M4F) or PMU (Cortex-M55)
 * cycle counter (hk_cycles.cc), which count
 * only with DEMCR.TRCENA set. neuralSPOT's ns_power_config powers the debug domain down on Apollo5
 * (and may on Apollo4); Ambiq's own profilers power it up before counting (am_util_pmu_init ->
 * am_hal_debug_enable on Apollo5, ns_start_perf_profiler -> am_hal_itm_enable). Same here. */
static void cycle_counter_power(void) {
#if defined(AM_PART_APOLLO5B) || defined(AM_PART_APOLLO510L) || defined(AM_PART_APOLLO330P)
    am_hal_debug_enable();
#elif defined(AM_PART_APOLLO4P) || defined(AM_PART_APOLLO4L) || defined(AM_PART_APOLLO4B)
    am_hal_itm_enable();
#endif
}

int hk_ns_board_init(void) {
    ns_core_config_t core_cfg = {.api = &ns_core_V1_0_0};
    if (ns_core_init(&core_cfg) != NS_STATUS_SUCCESS) {
        return 0;
    }
    ns_power_config(&ns_development_default); /* maximum clock (HK_CPU_HZ); no ITM/UART printf */
    cycle_counter_power();
    hk_ns_cycles_init();
    ns_timer_init(&s_timer);
    return 1;
}

#if HK_LINK_UART

extern "C" ns_uart_handle_t phUART; /* ns-uart's HAL handle (set up by ns_uart_init) */
static ns_uart_config_t s_uart = {
    .api = &ns_uart_V0_0_1,
    .uart_config = &g_sUartConfig,
    .rx_cb = NULL,
    .tx_cb = NULL,
    .tx_blocking = false,
    .rx_blocking = false,
};
static ns_uart_handle_t s_uart_handle;

#if defined(AM_PART_APOLLO3) || defined(AM_PART_APOLLO3P)

/* Apollo3 HAL: ns-uart gives the UART 4 KB interrupt-driven ring buffers; a 0 ms read returns what
 * they hold. */
int hk_ns_uart_init(uint32_t baud) {
    if (baud != 0u) {
        g_sUartConfig.ui32BaudRate = baud;
    }
    return ns_uart_init(&s_uart, &s_uart_handle) == NS_STATUS_SUCCESS;
}

size_t hk_platform_read(uint8_t *buf, size_t len) {
    /* what the UART's interrupt-driven ring buffer holds, without waiting */
    uint32_t got = 0;
    am_hal_uart_transfer_t xfer = {};
    xfer.ui32Direction = AM_HAL_UART_READ;
    xfer.pui8Data = buf;
    xfer.ui32NumBytes = (uint32_t)len;
    xfer.ui32TimeoutMs = 0;
    xfer.pui32BytesTransferred = &got;
    am_hal_uart_transfer(phUART, &xfer);
    return got;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    uint32_t sent = 0;
    am_hal_uart_transfer_t xfer = {};
    xfer.ui32Direction = AM_HAL_UART_WRITE;
    xfer.pui8Data = (uint8_t *)buf;
    xfer.ui32NumBytes = (uint32_t)len;
    xfer.ui32TimeoutMs = HK_WRITE_TIMEOUT_US / 1000u;
    xfer.pui32BytesTransferred = &sent;
    am_hal_uart_transfer(phUART, &xfer);
    return sent;
}

#else

/* Apollo4/Apollo5 HAL: transfers name their kind in eType (no ui32Direction). ns-uart sets up no
 * software queues there (only the 32-byte FIFO), so the app gives the HAL 4 KB RX/TX queues, filled
 * and drained by ns-uart's UART interrupt. A NONBLOCKING read would leave the HAL a transaction that
 * points into this stack frame, and a 0 ms BLOCKING read waits for the full count (the HAL only
 * times out when its 1 ms counter equals the timeout): reads are BLOCKING with a 1 ms limit, which
 * returns what arrived within that millisecond and closes the transaction. */
static uint8_t s_uart_rxq[4096];
static uint8_t s_uart_txq[4096];

int hk_ns_uart_init(uint32_t baud) {
    if (baud != 0u) {
        g_sUartConfig.ui32BaudRate = baud;
    }
    if (ns_uart_init(&s_uart, &s_uart_handle) != NS_STATUS_SUCCESS) {
        return 0;
    }
    return am_hal_uart_buffer_configure(phUART, s_uart_txq, sizeof s_uart_txq, s_uart_rxq, sizeof s_uart_rxq) ==
           AM_HAL_STATUS_SUCCESS;
}

size_t hk_platform_read(uint8_t *buf, size_t len) {
    uint32_t got = 0;
    am_hal_uart_transfer_t xfer = {};
    xfer.eType = AM_HAL_UART_BLOCKING_READ;
    xfer.pui8Data = buf;
    xfer.ui32NumBytes = (uint32_t)len;
    xfer.ui32TimeoutMs = 1;
    xfer.pui32BytesTransferred = &got;
    am_hal_uart_transfer(phUART, &xfer); /* AM_HAL_STATUS_TIMEOUT when fewer than len bytes came */
    return got;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    uint32_t sent = 0;
    am_hal_uart_transfer_t xfer = {};
    xfer.eType = AM_HAL_UART_BLOCKING_WRITE;
    xfer.pui8Data = (uint8_t *)buf;
    xfer.ui32NumBytes = (uint32_t)len;
    xfer.ui32TimeoutMs = HK_WRITE_TIMEOUT_US / 1000u;
    xfer.pui32BytesTransferred = &sent;
    am_hal_uart_transfer(phUART, &xfer);
    return sent;
}

#endif

#endif /* HK_LINK_UART */
