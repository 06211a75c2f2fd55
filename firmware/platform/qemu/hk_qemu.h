/*
 * hk_qemu.h - the QEMU Cortex-M platform's internals (machine facts, UART, counter, faults).
 *
 * One source tree for both machines; the build selects one with -DHK_QEMU_MACHINE_AN386=1 (mps2-an386,
 * Cortex-M4F) or -DHK_QEMU_MACHINE_AN547=1 (mps3-an547, Cortex-M55), see hkdeploy/platforms/qemu_build.py.
 * Addresses verified with `qemu-system-arm -M <machine> -monitor stdio` + `info mtree` (QEMU 7.2).
 */
#ifndef HK_QEMU_H
#define HK_QEMU_H

#include <stddef.h>
#include <stdint.h>

#if defined(HK_QEMU_MACHINE_AN386) && HK_QEMU_MACHINE_AN386
#define HK_QEMU_UART0_BASE 0x40004000u /* CMSDK APB UART0 (mps2-an386 "uart" at 0x40004000) */
#define HK_QEMU_SYSCLK_HZ 25000000u   /* SysTick with CLKSOURCE=1 runs at the 25 MHz system clock */
#define HK_QEMU_MACHINE "mps2-an386"
/* CMSDK APB watchdog (mps2-an386 "cmsdk-apb-watchdog" at 0x40008000): WDOGCLK is the 25 MHz system
 * clock, its interrupt is the NMI, a second expiry with RESEN resets the machine */
#define HK_QEMU_WATCHDOG_BASE 0x40008000u
#elif defined(HK_QEMU_MACHINE_AN547) && HK_QEMU_MACHINE_AN547
/* CMSDK APB UART0 of the SSE-300 subsystem: 0x49303000 non-secure, 0x59303000 secure. The core
 * boots (and stays) in the Secure state, so the secure alias is the one that answers. */
#define HK_QEMU_UART0_BASE 0x59303000u
#define HK_QEMU_SYSCLK_HZ 32000000u /* SysTick with CLKSOURCE=1 runs at the 32 MHz system clock */
#define HK_QEMU_MACHINE "mps3-an547"
#else
#error "define HK_QEMU_MACHINE_AN386=1 or HK_QEMU_MACHINE_AN547=1"
#endif

/* CMSDK APB UART0, polled (hk_qemu_uart.c) */
void hk_qemu_uart_init(void);
size_t hk_qemu_uart_read(uint8_t *buf, size_t len);
void hk_qemu_uart_write(const uint8_t *buf, size_t len);

/* SysTick as a free-running counter, extended to 64 bits in software (see hk_qemu_main.c) */
void hk_qemu_ticks_init(void);
uint64_t hk_qemu_ticks(void);
void hk_qemu_systick_isr(void);

/* Fault reporting (hk_qemu_fault.c): called from the reset handler before main() */
void hk_qemu_fault_report_previous(void);

#endif /* HK_QEMU_H */
