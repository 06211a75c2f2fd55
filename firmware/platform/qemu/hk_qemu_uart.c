/*
 * hk_qemu_uart.c - a polled driver for the CMSDK APB UART (ARM's Cortex-M System Design Kit UART,
 * as QEMU's cmsdk-apb-uart models it). Registers (offsets from the base):
 *   0x00 DATA      write: transmit a byte; read: the received byte
 *   0x04 STATE     bit 0 TX buffer full, bit 1 RX buffer full (bits 2/3 overrun, write 1 to clear)
 *   0x08 CTRL      bit 0 TX enable, bit 1 RX enable (interrupt enables left off)
 *   0x10 BAUDDIV   QEMU transmits only with a divider >= 16; the rate itself is not emulated
 * The RX side holds one byte: QEMU delivers the next one only after DATA was read.
 * Polled on purpose. An RX-interrupt + ring-buffer variant was tried: without WFI it was no faster
 * (14 RUN/s against 13-38 polled on the same loaded 2-core machine: noise dominates), and with WFI
 * while idle (QEMU 7.2, -icount shift=0) the device stopped answering; cause not found. See
 * docs/firmware.md.
 */
#include "hk_qemu.h"

#define UART_REG(off) (*(volatile uint32_t *)(HK_QEMU_UART0_BASE + (off)))
#define UART_DATA UART_REG(0x00u)
#define UART_STATE UART_REG(0x04u)
#define UART_CTRL UART_REG(0x08u)
#define UART_BAUDDIV UART_REG(0x10u)

#define STATE_TX_FULL 0x1u
#define STATE_RX_FULL 0x2u
#define STATE_OVERRUNS 0xCu

void hk_qemu_uart_init(void) {
    UART_CTRL = 0u;
    UART_BAUDDIV = 16u;
    UART_STATE = STATE_OVERRUNS;
    UART_CTRL = 0x3u; /* TX and RX enabled, no interrupts */
}

size_t hk_qemu_uart_read(uint8_t *buf, size_t len) {
    size_t n = 0u;
    while (n < len && (UART_STATE & STATE_RX_FULL) != 0u) {
        buf[n++] = (uint8_t)UART_DATA;
    }
    return n;
}

void hk_qemu_uart_write(const uint8_t *buf, size_t len) {
    for (size_t i = 0; i < len; i++) {
        /* QEMU clears TX_FULL once its chardev took the byte; a host that stops reading makes the
         * pty's buffer fill and this wait longer, which is what a real UART without flow control
         * would do too (the link core's host side always reads). */
        while ((UART_STATE & STATE_TX_FULL) != 0u) {
        }
        UART_DATA = buf[i];
    }
}
