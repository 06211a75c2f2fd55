/*
 * hk_ns_fault.c - what the neuralSPOT firmware does when the code faults: record, then reset.
 *
 * HardFault, MemManage, BusFault and UsageFault (the SDK's startup_gcc.c declares them weak and
 * aliases the last three to HardFault_Handler; these strong definitions replace them) pick the stacked
 * frame (MSP or PSP by EXC_RETURN bit 2), keep the exception number, CFSR and PC in RAM that startup
 * code never clears, and request a system reset through AIRCR.SYSRESETREQ (what CMSIS's
 * NVIC_SystemReset does). Nothing is sent from the handler: the link is USB CDC (TinyUSB, serviced
 * by interrupts that cannot run inside a fault) or an interrupt-driven UART.
 *
 * The same RAM holds the link core's "engine init in progress" word (hk_platform_noinit_word, see
 * core/hk_platform.h): when the fault hit inside hk_engine_init (TFLM's AllocateTensors on a bad
 * arena or model), the next boot does not run the init again and HELLO answers with alloc_status
 * ENGINE_INIT_FAULT and the recorded fault (hk_platform_fault_text) as a LOG line, instead of a
 * board that dies or resets forever before its link is up.
 *
 * The RAM: section ".noinit", which neuralSPOT's linker scripts do not name. GCC marks it NOBITS and
 * GNU ld places it as an orphan after .bss, outside _sbss.._ebss, which is all the SDK's
 * Reset_Handler zeroes (checked for apollo3p, apollo4p and apollo510 with arm-none-eabi-ld and the
 * SDK's scripts: docs/firmware.md). NOT verified on a real board: whether Apollo3/4/5 SRAM/TCM keeps
 * its content across a SYSRESETREQ reset (Ambiq documents it as a POI-level reset; TCM retention
 * across it is unmeasured). If it does not, the word reads as garbage (never the 32-bit magic, bar
 * one chance in 2^32) and the board behaves as before this change: the init runs on every boot.
 * Plain C against the Armv7-M/Armv8-M system registers: no SDK header, so it compiles without the SDK.
 */
#include <stddef.h>
#include <stdint.h>

#include "../../../core/hk_platform.h"

#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)

#define FAULT_MAGIC 0x464C5421u /* "FLT!" */
#define HK_FAULT_LINE 65u          /* one LOG event: at most 64 bytes (HK_MIN_PAYLOAD) */

typedef struct {
    uint32_t magic;
    uint32_t ipsr;
    uint32_t pc;
    uint32_t cfsr;
} hk_ns_fault_record_t;

__attribute__((section(".noinit"))) static hk_ns_fault_record_t s_record;
__attribute__((section(".noinit"))) static volatile uint32_t s_init_marker;

volatile uint32_t *hk_platform_noinit_word(void) { return &s_init_marker; }

static char *put(char *p, const char *end, const char *s) {
    while (*s != '\0' && p < end) {
        *p++ = *s++;
    }
    return p;
}

static char *put_hex(char *p, const char *end, const char *label, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    char buf[11] = {'0', 'x'};
    for (int i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    return put(put(p, end, label), end, buf);
}

/* "HardFault PC=0x00012345 CFSR=0x00010000" of the fault that reset the board, else NULL. The record
 * is consumed: a later reset that no fault caused reports nothing. */
const char *hk_platform_fault_text(void) {
    static const char *const kinds[] = {"Thread", "Reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault"};
    static char line[HK_FAULT_LINE];
    static int taken;
    if (!taken) {
        taken = 1;
        line[0] = '\0';
        if (s_record.magic == FAULT_MAGIC) {
            s_record.magic = 0u;
            char *p = line;
            const char *end = line + sizeof line - 1u;
            if (s_record.ipsr < sizeof kinds / sizeof kinds[0]) {
                p = put(p, end, kinds[s_record.ipsr]);
            } else {
                p = put_hex(p, end, "exception ", s_record.ipsr);
            }
            p = put_hex(p, end, " PC=", s_record.pc);
            p = put_hex(p, end, " CFSR=", s_record.cfsr);
            *p = '\0';
        }
    }
    return line[0] != '\0' ? line : NULL;
}

__attribute__((noreturn, used)) void hk_ns_fault(const uint32_t *frame);
__attribute__((noreturn, used)) void hk_ns_fault(const uint32_t *frame) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    s_record.ipsr = ipsr & 0x1FFu;
    s_record.pc = frame[6];
    s_record.cfsr = SCB_CFSR;
    s_record.magic = FAULT_MAGIC;
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}

__attribute__((naked)) void HardFault_Handler(void);
__attribute__((naked)) void HardFault_Handler(void) {
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b hk_ns_fault\n\t");
}

/* Not enabled in SHCSR by this firmware (they escalate to HardFault), but route them here if the SDK
 * or the application enables them. */
void MemManage_Handler(void) __attribute__((alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((alias("HardFault_Handler")));
