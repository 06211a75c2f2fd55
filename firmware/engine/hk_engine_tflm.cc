/*
 * hk_engine_tflm.cc - the board engine: TFLM's MicroInterpreter over the exported model.
 *
 * Model bytes, op resolver and arena size come from the export's headers (model_buffer.h,
 * model_ops.h, model_config.h). No heap: the interpreter is placement-constructed in static storage
 * so RESET can tear it down and build it again. Invoke() is timed in CPU cycles:
 *   - Cortex-M4F (Apollo3/4, __ARM_ARCH_7EM__): the DWT cycle counter (DEMCR.TRCENA, CYCCNTENA);
 *   - Cortex-M55 (Apollo5, __ARM_ARCH_8_1M_MAIN__; GCC 12 defines only __ARM_ARCH_8M_MAIN__ for it):
 *     the PMU cycle counter (PMU_CCNTR) when the device header declares a PMU, else the DWT cycle
 *     counter unless DWT_CTRL.NOCYCCNT says there is none;
 *   - anything else (a host syntax check): no counter, 0 cycles.
 * CMSIS core registers come from the AmbiqSuite device header (am_mcu_apollo.h) when the build has
 * it (every neuralSPOT build); without it the architectural addresses are used directly.
 * Microseconds are the host's business: HELLO reports hk_engine_cpu_hz() (HK_CPU_HZ by default).
 */
#include <new>
#include <stdint.h>
#include <string.h>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "../engine/hk_engine.h"
#include "model_buffer.h"
#include "model_config.h"
#include "model_ops.h"

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

#ifndef HK_ARENA_SIZE
#define HK_ARENA_SIZE HK_MODEL_ARENA_SIZE
#endif

/* Arena placement. neuralSPOT's Apollo4/Apollo5 linker scripts put .bss in the TCM (384 KB / 496 KB)
 * and .sram_bss (NOLOAD) in the shared SRAM (1 MB / 3 MB). The arena stays in the faster TCM while it
 * is at most HK_ARENA_TCM_MAX (the platform's module.mk sets it per part), else it goes to .sram_bss;
 * -DHK_ARENA_SRAM=0|1 forces either. Apollo3 has one SRAM region: no HK_ARENA_TCM_MAX, plain .bss. */
#ifndef HK_ARENA_SRAM
#if defined(HK_ARENA_TCM_MAX) && (HK_ARENA_SIZE > HK_ARENA_TCM_MAX)
#define HK_ARENA_SRAM 1
#else
#define HK_ARENA_SRAM 0
#endif
#endif
#if HK_ARENA_SRAM
#define HK_ARENA_ATTR __attribute__((section(".sram_bss")))
#else
#define HK_ARENA_ATTR
#endif

/* Clock used to turn cycles into microseconds; the platform passes the core clock it configured
 * (make HK_CPU_HZ=..., from the board file), or overrides hk_engine_cpu_hz() at run time. */
#ifndef HK_CPU_HZ
#define HK_CPU_HZ 96000000u
#endif

extern "C" __attribute__((weak)) uint32_t hk_engine_cpu_hz(void) { return HK_CPU_HZ; }

namespace {

alignas(16) uint8_t s_arena[HK_ARENA_SIZE] HK_ARENA_ATTR;
alignas(tflite::MicroInterpreter) uint8_t s_interp_mem[sizeof(tflite::MicroInterpreter)];
alignas(HkModelOpResolver) uint8_t s_resolver_mem[sizeof(HkModelOpResolver)];
tflite::MicroInterpreter *s_interp = nullptr;
HkModelOpResolver *s_resolver = nullptr;
TfLiteTensor *s_input = nullptr;
TfLiteTensor *s_output = nullptr;
int32_t s_status = HK_ENGINE_ERR_NOT_READY;

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
#if defined(HK_CYCLES_ARM) && !defined(HK_CYCLES_PMU)
bool s_have_dwt_cyccnt = false; /* DWT_CTRL.NOCYCCNT clear: the DWT has a cycle counter */
#endif

void cycle_counter_start() {
#if defined(HK_CYCLES_PMU)
    DCB->DEMCR |= DCB_DEMCR_TRCENA_Msk; /* the PMU counts only with trace enabled */
    ARM_PMU_Enable();
    ARM_PMU_CYCCNT_Reset();
    ARM_PMU_CNTR_Enable(PMU_CNTENSET_CCNTR_ENABLE_Msk);
#elif defined(HK_CYCLES_CMSIS) && defined(HK_CYCLES_V8M)
    DCB->DEMCR |= DCB_DEMCR_TRCENA_Msk;
    s_have_dwt_cyccnt = (DWT->CTRL & DWT_CTRL_NOCYCCNT_Msk) == 0u;
    if (s_have_dwt_cyccnt) {
        DWT->CYCCNT = 0u;
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
#elif defined(HK_CYCLES_CMSIS)
    CoreDebug->DEMCR |= CoreDebug_DEMCR_TRCENA_Msk;
    *k_dwt_lar = 0xC5ACCE55u; /* CoreSight unlock (needed on some M4 parts, ignored elsewhere) */
    s_have_dwt_cyccnt = (DWT->CTRL & DWT_CTRL_NOCYCCNT_Msk) == 0u;
    if (s_have_dwt_cyccnt) {
        DWT->CYCCNT = 0u;
        DWT->CTRL |= DWT_CTRL_CYCCNTENA_Msk;
    }
#elif defined(HK_CYCLES_ARM)
    *k_demcr |= (1u << 24); /* TRCENA */
#if defined(__ARM_ARCH_7EM__)
    *k_dwt_lar = 0xC5ACCE55u;
#endif
    s_have_dwt_cyccnt = (*k_dwt_ctrl & (1u << 25)) == 0u; /* NOCYCCNT */
    if (s_have_dwt_cyccnt) {
        *k_dwt_cyccnt = 0u;
        *k_dwt_ctrl |= 1u; /* CYCCNTENA */
    }
#endif
}

inline uint32_t cycles_now() {
#if defined(HK_CYCLES_PMU)
    return ARM_PMU_Get_CCNTR();
#elif defined(HK_CYCLES_CMSIS)
    return s_have_dwt_cyccnt ? DWT->CYCCNT : 0u;
#elif defined(HK_CYCLES_ARM)
    return s_have_dwt_cyccnt ? *k_dwt_cyccnt : 0u;
#else
    return 0u; /* no cycle counter on this target */
#endif
}

void fill_tensor(hk_tensor_info_t *t, const TfLiteTensor *src) {
    memset(t, 0, sizeof *t);
    t->dtype = static_cast<uint8_t>(src->type == kTfLiteInt8      ? HK_DTYPE_INT8
                                    : src->type == kTfLiteUInt8   ? HK_DTYPE_UINT8
                                    : src->type == kTfLiteInt16   ? HK_DTYPE_INT16
                                    : src->type == kTfLiteInt32   ? HK_DTYPE_INT32
                                    : src->type == kTfLiteFloat16 ? HK_DTYPE_FLOAT16
                                                                  : HK_DTYPE_FLOAT32);
    int n = src->dims ? src->dims->size : 0;
    if (n > HK_MAX_DIMS) {
        n = HK_MAX_DIMS;
    }
    t->ndim = static_cast<uint8_t>(n);
    for (int i = 0; i < n; i++) {
        t->dims[i] = src->dims->data[i];
    }
    t->scale = src->params.scale;
    t->zero_point = src->params.zero_point;
    t->bytes = static_cast<uint32_t>(src->bytes);
}

void fill_static(hk_engine_info_t *info) {
    static const uint8_t sha[32] = HK_MODEL_SHA256_BYTES;
    memset(info, 0, sizeof *info);
    info->arena_size = HK_ARENA_SIZE;
    info->model_size = HK_MODEL_LEN;
    info->cpu_hz = hk_engine_cpu_hz();
    memcpy(info->model_sha256, sha, sizeof sha);
}

void teardown() {
    if (s_interp != nullptr) {
        s_interp->~MicroInterpreter();
        s_interp = nullptr;
    }
    if (s_resolver != nullptr) {
        s_resolver->~HkModelOpResolver();
        s_resolver = nullptr;
    }
    s_input = s_output = nullptr;
    s_status = HK_ENGINE_ERR_NOT_READY;
}

} // namespace

extern "C" int32_t hk_engine_init(hk_engine_info_t *info) {
    teardown();
    fill_static(info);
    cycle_counter_start();
    const tflite::Model *model = tflite::GetModel(HK_MODEL_DATA);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        s_status = info->status = HK_ENGINE_ERR_MODEL_SCHEMA;
        return s_status;
    }
    s_resolver = new (s_resolver_mem) HkModelOpResolver();
    if (hk_model_register_ops(*s_resolver) != kTfLiteOk) {
        s_status = info->status = HK_ENGINE_ERR_ALLOCATE;
        return s_status;
    }
    s_interp = new (s_interp_mem) tflite::MicroInterpreter(model, *s_resolver, s_arena, HK_ARENA_SIZE);
    if (s_interp->AllocateTensors() != kTfLiteOk) {
        /* arena too small or an op missing: report how much was needed so far */
        info->arena_used = static_cast<uint32_t>(s_interp->arena_used_bytes());
        s_status = info->status = HK_ENGINE_ERR_ALLOCATE;
        return s_status;
    }
    s_input = s_interp->input(0);
    s_output = s_interp->output(0);
    if (s_input == nullptr || s_output == nullptr || s_input->bytes != HK_MODEL_INPUT_BYTES ||
        s_output->bytes != HK_MODEL_OUTPUT_BYTES) {
        s_status = info->status = HK_ENGINE_ERR_MODEL_SCHEMA; /* headers and flatbuffer disagree */
        return s_status;
    }
    fill_tensor(&info->input, s_input);
    fill_tensor(&info->output, s_output);
    info->arena_used = static_cast<uint32_t>(s_interp->arena_used_bytes());
    s_status = info->status = HK_ENGINE_OK;
    return s_status;
}

extern "C" uint8_t *hk_engine_input(void) {
    return s_input != nullptr ? s_input->data.uint8 : nullptr;
}

extern "C" const uint8_t *hk_engine_output(void) {
    return s_output != nullptr ? s_output->data.uint8 : nullptr;
}

extern "C" int32_t hk_engine_invoke(uint32_t *cycles) {
    if (s_status != HK_ENGINE_OK) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    const uint32_t start = cycles_now();
    const TfLiteStatus st = s_interp->Invoke();
    *cycles = cycles_now() - start; /* unsigned wrap-around gives the right difference */
    return st == kTfLiteOk ? HK_ENGINE_OK : HK_ENGINE_ERR_INVOKE;
}

extern "C" void hk_engine_reset(void) { teardown(); }
