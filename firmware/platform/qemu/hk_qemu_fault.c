/*
 * hk_qemu_fault.c - what the QEMU platform does when the code faults: report, then reset.
 *
 * Design: HardFault, MemManage, BusFault and UsageFault (enabled separately in SHCSR, with the
 * divide-by-zero trap on) all enter hk_qemu_fault_entry, which picks the stacked frame (MSP or PSP
 * by EXC_RETURN bit 2) and calls hk_qemu_fault(). That sends two LOG packets (hk_core_log keeps
 * at most 64 bytes, the smallest payload, so each line fits any link):
 *     "fault: UsageFault (UNDEFINSTR) PC=0x000012a4 LR=0x00001301"
 *     "fault: CFSR=0x00010000 HFSR=0x00000000; reset"      (+ MMFAR= / BFAR= when valid)
 * (a 0x00 delimiter first ends any half-sent frame so the host decodes the LOG), keeps the kind and
 * PC in .noinit RAM, and requests a system reset through AIRCR.SYSRESETREQ. QEMU then resets the
 * machine (the ELF is loaded again), the firmware boots as after power-on and, once its link is up,
 * sends "reset after a fault: UsageFault PC=0x000012a4" so a host that missed the first LOG still
 * learns why the device reset.
 * The host sees its request unanswered (or refused: payload back to the default after the reset),
 * HELLOs again and goes on. Polled UART only, no stack-heavy calls, no printf.
 *
 * The same .noinit RAM holds the link core's "engine init in progress" word
 * (hk_platform_noinit_word): when the fault hit inside hk_engine_init, the next boot finds it set,
 * does not run the init again (which would fault again: a reset loop with a link that never
 * answers) and HELLO reports ENGINE_INIT_FAULT with hk_platform_fault_text() as a LOG line. QEMU's
 * system reset (SYSRESETREQ or the monitor's system_reset) reloads the ELF's loadable segments only:
 * .noinit is NOLOAD, so it keeps its value (tests/platform/test_qemu_init_fault.py relies on it).
 */
#include <stdint.h>
#include <string.h>

#include "../../core/hk_core.h"
#include "../../core/hk_platform.h"
#include "hk_qemu.h"

#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)
#define SCB_CCR (*(volatile uint32_t *)0xE000ED14u)
#define SCB_AIRCR (*(volatile uint32_t *)0xE000ED0Cu)

#define FAULT_MAGIC 0x464C5421u /* "FLT!" */
#define HK_LOG_LINE 65u            /* hk_core_log sends at most HK_MIN_PAYLOAD (64) bytes */

typedef struct {
    uint32_t magic;
    uint32_t ipsr;
    uint32_t pc;
    uint32_t cfsr;
} hk_fault_record_t;

__attribute__((section(".noinit"))) static hk_fault_record_t s_record;
__attribute__((section(".noinit"))) static volatile uint32_t s_init_marker; /* the core's (hk_platform.h) */

static const char *const k_exception[] = {
    "Thread", "Reset", "NMI", "HardFault", "MemManage", "BusFault", "UsageFault", "SecureFault",
};

static const struct {
    uint32_t bit;
    const char *name;
} k_cfsr_bits[] = {
    {1u << 0, "IACCVIOL"},     {1u << 1, "DACCVIOL"},    {1u << 3, "MUNSTKERR"},   {1u << 4, "MSTKERR"},
    {1u << 5, "MLSPERR"},      {1u << 8, "IBUSERR"},     {1u << 9, "PRECISERR"},   {1u << 10, "IMPRECISERR"},
    {1u << 11, "UNSTKERR"},    {1u << 12, "STKERR"},     {1u << 13, "LSPERR"},     {1u << 16, "UNDEFINSTR"},
    {1u << 17, "INVSTATE"},    {1u << 18, "INVPC"},      {1u << 19, "NOCP"},       {1u << 20, "STKOF"},
    {1u << 24, "UNALIGNED"},   {1u << 25, "DIVBYZERO"},
};

typedef struct {
    char *p;
    char *end;
} text_t;

static void put(text_t *t, const char *s) {
    while (*s != '\0' && t->p < t->end) {
        *t->p++ = *s++;
    }
}

static void put_hex(text_t *t, const char *label, uint32_t v) {
    static const char digits[] = "0123456789abcdef";
    char buf[11] = {'0', 'x'};
    for (int i = 0; i < 8; i++) {
        buf[2 + i] = digits[(v >> (28 - 4 * i)) & 0xFu];
    }
    buf[10] = '\0';
    put(t, label);
    put(t, buf);
}

void hk_qemu_fault_init(void);
void hk_qemu_fault_init(void) {
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18); /* MemManage, BusFault, UsageFault enabled */
    SCB_CCR |= (1u << 4);                              /* DIV_0_TRP: integer division by zero faults */
}

static void put_kind(text_t *t, uint32_t ipsr) {
    if (ipsr < sizeof k_exception / sizeof k_exception[0]) {
        put(t, k_exception[ipsr]);
    } else {
        put_hex(t, "exception ", ipsr);
    }
}

/* " (UNDEFINSTR)": the CFSR bits that are set, if any */
static void put_cfsr(text_t *t, uint32_t cfsr) {
    const char *sep = " (";
    for (unsigned i = 0; i < sizeof k_cfsr_bits / sizeof k_cfsr_bits[0]; i++) {
        if (cfsr & k_cfsr_bits[i].bit) {
            put(t, sep);
            put(t, k_cfsr_bits[i].name);
            sep = " ";
        }
    }
    if (sep[0] == ' ' && sep[1] == '\0') {
        put(t, ")");
    }
}

__attribute__((noreturn, used)) void hk_qemu_fault(const uint32_t *frame, uint32_t exc_return);
__attribute__((noreturn, used)) void hk_qemu_fault(const uint32_t *frame, uint32_t exc_return) {
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    const uint32_t cfsr = SCB_CFSR, hfsr = SCB_HFSR, mmfar = SCB_MMFAR, bfar = SCB_BFAR;
    (void)exc_return;
    s_record.magic = FAULT_MAGIC;
    s_record.ipsr = ipsr;
    s_record.pc = frame[6];
    s_record.cfsr = cfsr;

    static const uint8_t delimiter = 0u;
    hk_qemu_uart_write(&delimiter, 1u); /* ends a frame the fault may have cut short */

    char line[HK_LOG_LINE];
    text_t t = {line, line + sizeof line - 1};
    put(&t, "fault: ");
    put_kind(&t, ipsr);
    put_cfsr(&t, cfsr);
    put_hex(&t, " PC=", frame[6]);
    put_hex(&t, " LR=", frame[5]);
    *t.p = '\0';
    hk_core_log(line);

    t.p = line;
    put_hex(&t, "fault: CFSR=", cfsr);
    put_hex(&t, " HFSR=", hfsr);
    if (cfsr & (1u << 7)) {
        put_hex(&t, " MMFAR=", mmfar);
    }
    if (cfsr & (1u << 15)) {
        put_hex(&t, " BFAR=", bfar);
    }
    put(&t, "; reset");
    *t.p = '\0';
    hk_core_log(line);

    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}

volatile uint32_t *hk_platform_noinit_word(void) { return &s_init_marker; }

/* "UsageFault (UNDEFINSTR) PC=0x000012a4" of the fault that reset the machine, until
 * hk_qemu_fault_report_previous() has reported it (after hk_core_init), else NULL. */
const char *hk_platform_fault_text(void) {
    static char line[HK_LOG_LINE];
    if (s_record.magic != FAULT_MAGIC) {
        return NULL;
    }
    text_t t = {line, line + sizeof line - 1};
    put_kind(&t, s_record.ipsr);
    put_cfsr(&t, s_record.cfsr);
    put_hex(&t, " PC=", s_record.pc);
    *t.p = '\0';
    return line;
}

/* Called once the link is up after boot: a reset that a fault caused is reported once more. */
void hk_qemu_fault_report_previous(void) {
    if (s_record.magic != FAULT_MAGIC) {
        return;
    }
    s_record.magic = 0u;
    char line[HK_LOG_LINE];
    text_t t = {line, line + sizeof line - 1};
    put(&t, "reset after a fault: ");
    put_kind(&t, s_record.ipsr);
    put_hex(&t, " PC=", s_record.pc);
    *t.p = '\0';
    hk_core_log(line);
}

__attribute__((naked)) void hk_qemu_fault_entry(void) {
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b hk_qemu_fault\n\t");
}
