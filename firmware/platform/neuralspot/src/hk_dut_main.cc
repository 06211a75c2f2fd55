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

/* The board (clock, counter, hk_platform_micros) and the UART are hk_ns_common.cc's. */

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
    if (!hk_ns_board_init()) {
        while (1) {
        }
    }
    timestamp_pin_init();
    if (!hk_ns_uart_init(HK_DUT_BAUD)) {
        while (1) { /* no UART: nothing to report to; the runner's "No response to command name" */
        }
    }
    ns_interrupt_master_enable();
    hk_dut_init(&s_cfg);
    while (1) {
        hk_dut_poll();
    }
}
