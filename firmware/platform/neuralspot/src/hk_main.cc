/*
 * hk_main.cc - the hkdeploy firmware on a neuralSPOT board: the link core over USB CDC (ns-usb,
 * default) or the EVB's UART (ns-uart, HK_LINK_UART=1, e.g. Apollo3 through the J-Link VCOM), and
 * the TFLM engine (engine/hk_engine_tflm.cc).
 *
 * Build-time facts come from make (see module.mk): HK_BOARD_NAME, HK_BUILD_ID, HK_CPU_HZ.
 * The main loop polls the link core; every platform call is bounded.
 */
#include <stdint.h>
#include <string.h>

#include "ns_ambiqsuite_harness.h"
#include "ns_core.h"

#if !HK_LINK_UART
#include "ns_usb.h"
#include "tusb.h"
#endif

#include "../../../core/hk_core.h"
#include "../../../core/hk_platform.h"
#include "hk_ns_platform.h"

#if !HK_LINK_UART /* USB CDC; the UART is hk_ns_common.cc's */

static uint8_t s_usb_rx[4096];
static uint8_t s_usb_tx[4096];
static usb_handle_t s_usb;
static ns_usb_config_t s_usb_cfg = {
    .api = &ns_usb_V1_0_0,
    .deviceType = NS_USB_CDC_DEVICE,
    .rx_buffer = s_usb_rx,
    .rx_bufferLength = sizeof s_usb_rx,
    .tx_buffer = s_usb_tx,
    .tx_bufferLength = sizeof s_usb_tx,
    .rx_cb = NULL,
    .tx_cb = NULL,
    .service_cb = NULL,
    .desc_url = NULL,
};

static int link_init(void) { return ns_usb_init(&s_usb_cfg, &s_usb) == NS_STATUS_SUCCESS; }

size_t hk_platform_read(uint8_t *buf, size_t len) {
    uint32_t got = 0;
    ns_interrupt_master_disable(); /* TinyUSB's FIFO is also serviced from the USB timer ISR */
    uint32_t avail = tud_cdc_available();
    if (avail > 0u) {
        got = tud_cdc_read(buf, avail < len ? avail : (uint32_t)len);
    }
    ns_interrupt_master_enable();
    return got;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    size_t sent = 0;
    const uint64_t deadline = hk_platform_micros() + HK_WRITE_TIMEOUT_US;
    while (sent < len && hk_platform_micros() < deadline) {
        ns_interrupt_master_disable();
        sent += tud_cdc_write(buf + sent, (uint32_t)(len - sent));
        tud_cdc_write_flush();
        ns_interrupt_master_enable();
        if (sent < len) {
            ns_delay_us(50);
        }
    }
    return sent;
}

#else

static int link_init(void) { return hk_ns_uart_init(0u); } /* the BSP's baud rate */

#endif

int main(void) {
    if (!hk_ns_board_init()) {
        while (1) {
        }
    }
    if (!link_init()) {
        while (1) { /* no link: nothing to report to; the host's HELLO times out with a hint */
        }
    }
    ns_interrupt_master_enable();
    hk_core_init();
    while (1) {
        hk_core_poll();
    }
}
