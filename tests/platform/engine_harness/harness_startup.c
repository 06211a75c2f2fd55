/*
 * harness_startup.c - TEST DOUBLE of a platform: startup for the engine test harness on QEMU
 * (mps2-an386 / mps3-an547) with semihosting (newlib's librdimon: stdio and files on the host).
 * Never part of a firmware build. Vectors, FPU/MVE on, .bss zeroed (.data is loaded in place by
 * QEMU's ELF loader), constructors, main(), exit code via semihosting; faults exit with 99.
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __bss_start__, __bss_end__, __stack_top;
extern int main(void);
extern void __libc_init_array(void);
extern void initialise_monitor_handles(void);

volatile uint32_t g_harness_systick_wraps;

void SysTick_Handler(void) { g_harness_systick_wraps++; }

static void harness_fault(void) { exit(99); }

/* -nostartfiles drops crti/crtn: newlib's __libc_init_array / __libc_fini_array still call these. */
void _init(void) {}
void _fini(void) {}

__attribute__((noreturn, optimize("no-tree-vectorize"))) void Reset_Handler(void) {
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10/CP11 (FPU; MVE on the M55) */
    __asm volatile("dsb\n\tisb" ::: "memory");
    for (volatile uint32_t *p = &__bss_start__; p < &__bss_end__;) {
        *p++ = 0u;
    }
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

typedef void (*vector_t)(void);
__attribute__((section(".vectors"), used)) const vector_t g_harness_vectors[16] = {
    (vector_t)(uintptr_t)&__stack_top, Reset_Handler, harness_fault, harness_fault, harness_fault,
    harness_fault, harness_fault, harness_fault, 0, 0, 0, harness_fault, harness_fault, 0,
    harness_fault, SysTick_Handler,
};
