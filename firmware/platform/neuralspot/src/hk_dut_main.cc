/*
 * hk_dut_main.cc - the MLPerf Tiny DUT image on a neuralSPOT board (make HK_APP=mlperf): the
 * runner's text protocol (firmware/dut) on the EVB's UART (ns-uart, the BSP's COM UART that the
 * J-Link virtual COM port carries) and the TFLM engine (engine/hk_engine_tflm.cc).
 *
 * Make variables (module.mk): HK_DUT_NAME, HK_DUT_MODEL_ID, HK_DUT_ENERGY (1: timestamps are falling
 * edges on GPIO HK_DUT_TS_PIN), HK_DUT_BAUD (115200; 921600 for ad01; 9600 in energy mode).
 */
#include <stdint.h>
#include <string.h>

#include "ns_ambiqsuite_harness.h"
#include "ns_core.h"
#include "ns_peripherals_power.h"
#include "ns_timer.h"
#include "ns_uart.h"

#include "../../../core/hk_platform.h"
#include "../../../dut/hk_dut.h"
#include "hk_ns_platform.h"
#include "model_config.h"

#ifndef HK_DUT_NAME
#define HK_DUT_NAME "hkdeploy-custom"
#endif
#ifndef HK_DUT_MODEL_ID
#define HK_DUT_MODEL_ID "custom"
#endif
#ifndef HK_DUT_ENERGY
#define HK_DUT_ENERGY 0
#endif
#ifndef HK_DUT_BAUD
#define HK_DUT_BAUD 115200u
#endif
#if HK_DUT_ENERGY && !defined(HK_DUT_TS_PIN)
#error "energy mode needs HK_DUT_TS_PIN (the board file's mlperf_timestamp_pin)"
#endif
#ifndef HK_BOARD_NAME
#define HK_BOARD_NAME "neuralspot"
#endif
#ifndef HK_BUILD_ID
#define HK_BUILD_ID "unknown"
#endif

/* Longest a write may wait for the UART to drain before giving up (bounded, never hangs). */
#define HK_WRITE_TIMEOUT_MS 500u

static ns_timer_config_t s_timer = {
    .api = &ns_timer_V1_0_0,
    .timer = NS_TIMER_COUNTER,
    .enableInterrupt = false,
    .periodInMicroseconds = 0,
    .callback = NULL,
};

uint64_t hk_platform_micros(void) {
    /* the 32-bit microsecond ticker wraps every ~71.6 minutes: extend it to 64 bits (the main loop and
     * every timestamp call it far more often than that) */
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
void hk_platform_reset(void) {}

/* The engine times Invoke() with hk_platform_cycles() (hk_cycles.cc), which counts only with the
 * debug domain powered (see hk_main.cc); the DUT reports wall-clock microseconds, the cycles are
 * only the engine's. */
static void cycle_counter_power(void) {
#if defined(AM_PART_APOLLO5B) || defined(AM_PART_APOLLO510L) || defined(AM_PART_APOLLO330P)
    am_hal_debug_enable();
#elif defined(AM_PART_APOLLO4P) || defined(AM_PART_APOLLO4L) || defined(AM_PART_APOLLO4B)
    am_hal_itm_enable();
#endif
}

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

size_t hk_platform_read(uint8_t *buf, size_t len) {
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
    xfer.ui32TimeoutMs = HK_WRITE_TIMEOUT_MS;
    xfer.pui32BytesTransferred = &sent;
    am_hal_uart_transfer(phUART, &xfer);
    return sent;
}

void hk_dut_platform_timestamp_pin(int level) {
#if HK_DUT_ENERGY
    if (level) {
        am_hal_gpio_output_set(HK_DUT_TS_PIN);
    } else {
        am_hal_gpio_output_clear(HK_DUT_TS_PIN);
    }
#else
    (void)level;
#endif
}

static void timestamp_pin_init(void) {
#if HK_DUT_ENERGY
#if defined(AM_PART_APOLLO3) || defined(AM_PART_APOLLO3P)
    am_hal_gpio_pinconfig(HK_DUT_TS_PIN, g_AM_HAL_GPIO_OUTPUT);
#else
    am_hal_gpio_pinconfig(HK_DUT_TS_PIN, am_hal_gpio_pincfg_output);
#endif
    am_hal_gpio_output_set(HK_DUT_TS_PIN); /* idle high: each timestamp is a falling edge */
#endif
}

static uint8_t s_input[HK_MODEL_INPUT_BYTES];
static const hk_dut_config_t s_cfg = {HK_DUT_NAME, HK_DUT_MODEL_ID, HK_DUT_ENERGY, s_input, sizeof s_input};

int main(void) {
    ns_core_config_t core_cfg = {.api = &ns_core_V1_0_0};
    if (ns_core_init(&core_cfg) != NS_STATUS_SUCCESS) {
        while (1) {
        }
    }
    ns_power_config(&ns_development_default);
    cycle_counter_power();
    hk_ns_cycles_init();
    ns_timer_init(&s_timer);
    timestamp_pin_init();
    g_sUartConfig.ui32BaudRate = HK_DUT_BAUD;
    if (ns_uart_init(&s_uart, &s_uart_handle) != NS_STATUS_SUCCESS) {
        while (1) { /* no UART: nothing to report to; the runner's "No response to command name" */
        }
    }
    ns_interrupt_master_enable();
    hk_dut_init(&s_cfg);
    while (1) {
        hk_dut_poll();
    }
}
