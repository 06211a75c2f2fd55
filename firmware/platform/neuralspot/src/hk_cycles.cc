/*
 * hk_cycles.cc - the neuralSPOT boards' cycle counter behind hk_platform_cycles() (hk_platform.h):
 *   - Cortex-M4F (Apollo3/4, __ARM_ARCH_7EM__): the DWT cycle counter (DEMCR.TRCENA, CYCCNTENA);
 *   - Cortex-M55 (Apollo5, __ARM_ARCH_8_1M_MAIN__; GCC 12 defines only __ARM_ARCH_8M_MAIN__ for it):
 *     the PMU cycle counter (PMU_CCNTR) when the device header declares a PMU, else the DWT cycle
 *     counter unless DWT_CTRL.NOCYCCNT says there is none;
 *   - anything else (a host syntax check): no counter (kind HK_COUNTER_NONE, 0 counts).
 * CMSIS core registers come from the AmbiqSuite device header (am_mcu_apollo.h) when the build has
 * it (every neuralSPOT build); without it the architectural addresses are used directly.
 * hk_main.cc powers the debug domain (the counters count only with it) and then calls
 * hk_ns_cycles_init(). The rate is the core clock the platform configured (make HK_CPU_HZ=...).
 */
#include <stdint.h>

#include "../../../core/hk_platform.h"
#include "hk_ns_platform.h"

#if defined(__ARM_ARCH_8_1M_MAIN__) || defined(__ARM_ARCH_8M_MAIN__)
#define HK_CYCLES_V8M 1
#endif
#if defined(__ARM_ARCH_7EM__) || defined(HK_CYCLES_V8M)
#define HK_CYCLES_ARM 1
#if defined(__has_include)
#if __has_include("am_mcu_apollo.h")
#include "am_mcu_apollo.h" /* device header -> CMSIS core_cm4.h / core_cm55.h (DWT, DCB, PMU) */
#define HK_CYCLES_CMSIS 1
#endif
#endif
#endif

/* Clock used to turn cycles into microseconds: the core clock neuralSPOT's power mode runs. */
#ifndef HK_CPU_HZ
#define HK_CPU_HZ 96000000u
#endif

namespace {

#if defined(HK_CYCLES_ARM) && !defined(HK_CYCLES_CMSIS)
/* ARMv7-M / ARMv8.1-M debug registers (architectural addresses, the same on both cores). */
volatile uint32_t *const k_demcr = reinterpret_cast<volatile uint32_t *>(0xE000EDFCu);
volatile uint32_t *const k_dwt_ctrl = reinterpret_cast<volatile uint32_t *>(0xE0001000u);
volatile uint32_t *const k_dwt_cyccnt = reinterpret_cast<volatile uint32_t *>(0xE0001004u);
#endif
#if defined(HK_CYCLES_ARM) && defined(__ARM_ARCH_7EM__)
volatile uint32_t *const k_dwt_lar = reinterpret_cast<volatile uint32_t *>(0xE0001FB0u);
#endif
#if defined(HK_CYCLES_V8M) && defined(HK_CYCLES_CMSIS) && defined(__PMU_PRESENT) && (__PMU_PRESENT == 1U)
#define HK_CYCLES_PMU 1
#endif
#if defined(HK_CYCLES_PMU)
const bool s_have_counter = true;
#else
bool s_have_counter = false; /* DWT_CTRL.NOCYCCNT clear: the DWT has a cycle counter */
#endif

} // namespace

extern "C" void hk_ns_cycles_init(void) {
#if defined(HK_CYCLES_PMU)
    DCB->DEMCR |= DCB_DEMCR_TRCENA_Msk; /* the PMU counts only with trace enabled */
    ARM_PMU_Enable();
    ARM_PMU_CYCCNT_Reset();
    ARM_PMU_CNTR_Enable(PMU_CNTENSET_CCNTR_ENABLE_Msk);
#elif defined(HK_CYCLES_CMSIS) && defined(HK_CYCLES_V8M)
    DCB->DEMCR |= DCB_DEMCR_TRCENA_Msk;
    s_have_counter = (DWT->CTRL & DWT_CTRL_NOCYCCNT_Msk) == 0u;
    if (s_have_counter) {
        DWT->CYCCNT = 0u;
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
#elif defined(HK_CYCLES_CMSIS)
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
    *k_dwt_lar = 0xC5ACCE55u; /* CoreSight unlock (needed on some M4 parts, ignored elsewhere) */
    s_have_counter = (DWT->CTRL & DWT_CTRL_NOCYCCNT_Msk) == 0u;
    if (s_have_counter) {
        DWT->CYCCNT = 0u;
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
#elif defined(HK_CYCLES_ARM)
    *k_demcr |= (1u << 24); /* TRCENA */
#if defined(__ARM_ARCH_7EM__)
    *k_dwt_lar = 0xC5ACCE55u;
#endif
    s_have_counter = (*k_dwt_ctrl & (1u << 25)) == 0u; /* NOCYCCNT */
    if (s_have_counter) {
        *k_dwt_cyccnt = 0u;
        *k_dwt_ctrl |= 1u; /* CYCCNTENA */
    }
#endif
}

extern "C" uint32_t hk_platform_cycles(void) {
#if defined(HK_CYCLES_PMU)
    return ARM_PMU_Get_CCNTR();
#elif defined(HK_CYCLES_CMSIS)
    return s_have_counter ? DWT->CYCCNT : 0u;
#elif defined(HK_CYCLES_ARM)
    return s_have_counter ? *k_dwt_cyccnt : 0u;
#else
    return 0u; /* no cycle counter on this target */
#endif
}

extern "C" uint8_t hk_platform_counter_kind(void) {
    return s_have_counter ? HK_COUNTER_CPU_CYCLES : HK_COUNTER_NONE;
}

extern "C" uint32_t hk_platform_counter_hz(void) { return s_have_counter ? HK_CPU_HZ : 0u; }
