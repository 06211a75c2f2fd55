/*
 * hk_qemu_startup.c - vector table and reset handler of the QEMU Cortex-M platform (our own code).
 *
 * Reset_Handler: enables the FPU (CPACR CP10/CP11 full access; on the Cortex-M55 the same bits
 * enable the Helium/MVE unit), copies .data from its load address, zeroes .bss, runs the C/C++
 * constructors (.preinit_array/.init_array), then main(). The four fault vectors go to
 * hk_qemu_fault_entry (hk_qemu_fault.c), SysTick to the counter's wrap handler; every other
 * exception is unexpected (never enabled) and is reported like a fault.
 */
#include <stdint.h>

#include "hk_qemu.h"

extern uint32_t __data_start, __data_end, __data_load, __bss_start, __bss_end, __stack_top;
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void hk_qemu_fault_entry(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

/* No auto-vectorisation here: on the Cortex-M55 a Helium instruction before CPACR is set faults. */
__attribute__((noreturn, optimize("no-tree-vectorize"))) void Reset_Handler(void) {
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11: full access (FPU; MVE on the M55) */
    __asm volatile("dsb\n\tisb" ::: "memory");
    volatile uint32_t *src = &__data_load;
    for (volatile uint32_t *dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (volatile uint32_t *dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
    for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; f++) {
        (*f)();
    }
    for (void (**f)(void) = __init_array_start; f < __init_array_end; f++) {
        (*f)();
    }
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}

typedef void (*hk_vector_t)(void);

/* 16 system exceptions + 96 external interrupts (an547's UART0 RX alone is line 33): none is
 * enabled, so each one reports as a fault if it ever fires. */
#define HK_QEMU_VECTORS (16 + 96)
__attribute__((section(".vectors"), used)) const hk_vector_t hk_qemu_vectors[HK_QEMU_VECTORS] = {
    (hk_vector_t)(uintptr_t)&__stack_top, /* initial MSP */
    Reset_Handler,
    hk_qemu_fault_entry, /* NMI */
    hk_qemu_fault_entry, /* HardFault */
    hk_qemu_fault_entry, /* MemManage */
    hk_qemu_fault_entry, /* BusFault */
    hk_qemu_fault_entry, /* UsageFault */
    hk_qemu_fault_entry, /* SecureFault (ARMv8-M; reserved on the M4) */
    0, 0, 0,
    hk_qemu_fault_entry, /* SVCall */
    hk_qemu_fault_entry, /* DebugMonitor */
    0,
    hk_qemu_fault_entry, /* PendSV */
    hk_qemu_systick_isr, /* SysTick: extends the counter once per 2^24 ticks */
    [16 ... HK_QEMU_VECTORS - 1] = hk_qemu_fault_entry,
};
