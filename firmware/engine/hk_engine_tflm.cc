/*
 * hk_engine_tflm.cc - the board engine: TFLM's MicroInterpreter over the exported model.
 *
 * Model bytes, op resolver and arena size come from the export's headers (model_buffer.h,
 * model_ops.h, model_config.h). No heap: the interpreter is placement-constructed in static storage
 * so RESET can tear it down and build it again. Invoke() is timed with the platform's counter
 * (hk_platform_cycles(): DWT/PMU cycles on Apollo, SysTick ticks under QEMU; HELLO says which).
 * Arena placement is the platform's: its hk_engine_platform.h (when the include path has one)
 * defines HK_ARENA_ATTR, e.g. the neuralSPOT platform's .sram_bss for large arenas.
 *
 * The engine owns a copy of the input (hk_engine_input()) and copies it into TFLM's input tensor
 * before every Invoke(): TFLM reuses the input tensor's memory for later activations, so after one
 * Invoke() the tensor no longer holds the input (INVOKE / PERF without a fresh input would run on
 * activations). With -DHK_TFLM_LOG_CALLBACK=1 (TFLM built with cortex_m_generic's debug_log.cc, as
 * hkdeploy.platforms.tflm_lib does) TFLM's messages are forwarded line by line as LOG events
 * (hk_core_log) and the first one since init (the cause; TFLM's errors cascade) is kept for
 * hk_engine_error_text() (HELLO repeats it); when an
 * allocation fails, arena_used reports at least the bytes needed: arena_size + the shortfall TFLM
 * names ("missing: N"), rounded up to 16 (TFLM uses the arena in 16-byte aligned units).
 *
 * Per-operator profile and tensor capture (PROFILE / TENSOR): the interpreter gets the model's op
 * resolver through HookedResolver, which hands out a copy of each registration whose invoke is a
 * trampoline (one per op kind, so each knows the real kernel). A trampoline counts the operators of
 * an Invoke(); when a profile is being taken it times the real kernel with hk_platform_cycles(), and
 * when an operator's output is wanted it copies it out right after that operator ran (TFLM reuses
 * activation memory, so afterwards it is gone; no preserve-all-tensors arena needed). Outside a
 * PROFILE / TENSOR request a trampoline adds a call and a test per operator.
 */
#include <new>
#include <stdint.h>
#include <string.h>

#include "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.h"
#include "tensorflow/lite/micro/memory_helpers.h"
#include "tensorflow/lite/micro/memory_planner/greedy_memory_planner.h"
#include "tensorflow/lite/micro/micro_allocator.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

#include "../core/hk_platform.h"
#include "../engine/hk_engine.h"
#include "model_buffer.h"
#include "model_config.h"
#include "model_ops.h"

#ifndef HK_ARENA_SIZE
#define HK_ARENA_SIZE HK_MODEL_ARENA_SIZE
#endif
#ifndef HK_MODEL_OP_COUNT
#error "model_ops.h defines no HK_MODEL_OP_COUNT (the op kinds it registers): re-run hkdeploy export"
#endif

#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
#include "../core/hk_core.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#endif

#if defined(__has_include)
#if __has_include("hk_engine_platform.h")
#include "hk_engine_platform.h" /* the platform's arena placement (HK_ARENA_ATTR) */
#endif
#endif
#ifndef HK_ARENA_ATTR
#define HK_ARENA_ATTR
#endif

namespace {

alignas(16) uint8_t s_arena[HK_ARENA_SIZE] HK_ARENA_ATTR;
alignas(tflite::MicroInterpreter) uint8_t s_interp_mem[sizeof(tflite::MicroInterpreter)];
alignas(HkModelOpResolver) uint8_t s_resolver_mem[sizeof(HkModelOpResolver)];
tflite::MicroInterpreter *s_interp = nullptr;
HkModelOpResolver *s_resolver = nullptr;
TfLiteTensor *s_input = nullptr;
TfLiteTensor *s_output = nullptr;
int32_t s_status = HK_ENGINE_ERR_NOT_READY;

/* TFLM places its own allocator, memory planner and MicroAllocator in the arena's tail and does not
 * check that they fit: a smaller arena is a null dereference (a HardFault on the board, before the
 * link is up), not an error. Below this floor the engine refuses to construct the interpreter. */
constexpr uint32_t k_tflm_floor =
    static_cast<uint32_t>(sizeof(tflite::SingleArenaBufferAllocator) + sizeof(tflite::GreedyMemoryPlanner) +
                          sizeof(tflite::MicroAllocator) + 4u * 16u /* 16-byte alignment of each + the arena */);
alignas(16) uint8_t s_input_copy[HK_MODEL_INPUT_BYTES]; /* the input the host sent, kept intact */

/* -- per-operator hooks (PROFILE / TENSOR) -------------------------------------------------------- */
using InvokeFn = TfLiteStatus (*)(TfLiteContext *, TfLiteNode *);
constexpr unsigned k_kinds = HK_MODEL_OP_COUNT; /* one trampoline per op kind the resolver holds */
TFLMRegistration s_hooked[k_kinds];
const TFLMRegistration *s_real[k_kinds];
unsigned s_hooked_n = 0u;
bool s_hooks_ok = true;          /* every registration handed out was hooked */
uint16_t s_op_count = 0u;        /* operators of the main subgraph */
uint32_t s_op_index = 0u;        /* operators run so far in this Invoke() */

struct Trace {                   /* what the current Invoke() records (nothing outside a request) */
    hk_op_cycles_t *ops = nullptr;
    uint16_t max_ops = 0u;
    int32_t capture_op = -1;
    uint32_t offset = 0u;
    uint8_t *dst = nullptr;
    uint32_t len = 0u;           /* in: room; out: bytes copied */
    uint32_t nbytes = 0u;
    uint16_t dtype = 0u;
    uint16_t tensor = 0u;
    bool captured = false;
};
Trace s_trace;

uint16_t wire_dtype(TfLiteType type) {
    return static_cast<uint16_t>(type == kTfLiteInt8      ? HK_DTYPE_INT8
                                 : type == kTfLiteUInt8   ? HK_DTYPE_UINT8
                                 : type == kTfLiteInt16   ? HK_DTYPE_INT16
                                 : type == kTfLiteInt32   ? HK_DTYPE_INT32
                                 : type == kTfLiteFloat16 ? HK_DTYPE_FLOAT16
                                                          : HK_DTYPE_FLOAT32);
}

void capture_output(TfLiteContext *ctx, TfLiteNode *node) {
    if (node->outputs == nullptr || node->outputs->size < 1) {
        return;
    }
    const int index = node->outputs->data[0];
    TfLiteEvalTensor *t = ctx->GetEvalTensor(ctx, index);
    size_t bytes = 0u;
    if (t == nullptr || tflite::TfLiteEvalTensorByteLength(t, &bytes) != kTfLiteOk) {
        return;
    }
    s_trace.nbytes = static_cast<uint32_t>(bytes);
    s_trace.dtype = wire_dtype(t->type);
    s_trace.tensor = static_cast<uint16_t>(index);
    uint32_t n = s_trace.offset < s_trace.nbytes ? s_trace.nbytes - s_trace.offset : 0u;
    if (n > s_trace.len) {
        n = s_trace.len;
    }
    memcpy(s_trace.dst, static_cast<const uint8_t *>(t->data.data) + s_trace.offset, n);
    s_trace.len = n;
    s_trace.captured = true;
}

template <unsigned K> TfLiteStatus hooked_invoke(TfLiteContext *ctx, TfLiteNode *node) {
    const uint32_t i = s_op_index++;
    if (s_trace.ops == nullptr && s_trace.capture_op < 0) {
        return s_real[K]->invoke(ctx, node);
    }
    const uint32_t start = hk_platform_cycles();
    const TfLiteStatus st = s_real[K]->invoke(ctx, node);
    const uint32_t cycles = hk_platform_cycles() - start;
    if (s_trace.ops != nullptr && i < s_trace.max_ops) {
        s_trace.ops[i].builtin_code = static_cast<uint16_t>(s_real[K]->builtin_code);
        s_trace.ops[i].cycles = cycles;
    }
    if (static_cast<int32_t>(i) == s_trace.capture_op && st == kTfLiteOk) {
        capture_output(ctx, node);
    }
    return st;
}

/* hooked_invoke<0> ... hooked_invoke<k_kinds - 1>, without <utility> */
template <unsigned... K> struct Seq {};
template <unsigned N, unsigned... K> struct MakeSeq : MakeSeq<N - 1u, N - 1u, K...> {};
template <unsigned... K> struct MakeSeq<0u, K...> {
    using type = Seq<K...>;
};
template <unsigned... K> struct Hooks {
    static constexpr InvokeFn table[sizeof...(K)] = {&hooked_invoke<K>...};
};
template <unsigned... K> constexpr InvokeFn Hooks<K...>::table[sizeof...(K)];
template <unsigned... K> constexpr const InvokeFn *hooks_of(Seq<K...>) { return Hooks<K...>::table; }
const InvokeFn *const k_hooks = hooks_of(typename MakeSeq<k_kinds>::type{});

/* The model's resolver as the interpreter sees it: the same kernels, each invoke behind a trampoline. */
class HookedResolver : public tflite::MicroOpResolver {
  public:
    explicit HookedResolver(const tflite::MicroOpResolver &inner) : inner_(inner) {}
    const TFLMRegistration *FindOp(tflite::BuiltinOperator op) const override { return hook(inner_.FindOp(op)); }
    const TFLMRegistration *FindOp(const char *op) const override { return hook(inner_.FindOp(op)); }
    tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override {
        return inner_.GetOpDataParser(op);
    }

  private:
    static const TFLMRegistration *hook(const TFLMRegistration *real) {
        if (real == nullptr || real->invoke == nullptr) {
            return real;
        }
        for (unsigned k = 0u; k < s_hooked_n; k++) {
            if (s_real[k] == real) {
                return &s_hooked[k];
            }
        }
        if (s_hooked_n == k_kinds) { /* more kinds than the resolver registered: cannot happen, but */
            s_hooks_ok = false;      /* then operator indices would be wrong: no PROFILE / TENSOR */
            return real;
        }
        const unsigned k = s_hooked_n++;
        s_real[k] = real;
        s_hooked[k] = *real;
        s_hooked[k].invoke = k_hooks[k];
        return &s_hooked[k];
    }
    const tflite::MicroOpResolver &inner_;
};
alignas(HookedResolver) uint8_t s_hooked_resolver_mem[sizeof(HookedResolver)];
HookedResolver *s_hooked_resolver = nullptr;

#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
#define HK_LOG_LINE 160u
char s_log_line[HK_LOG_LINE];      /* the line being assembled from DebugLog pieces */
size_t s_log_len = 0u;
char s_last_error[HK_LOG_LINE];    /* the first complete line since init (NUL-terminated) */
uint32_t s_missing = 0u;           /* largest "missing: N" TFLM reported since init */

uint32_t parse_missing(const char *line) {
    const char *p = strstr(line, "missing: ");
    if (p == nullptr) {
        return 0u;
    }
    uint32_t v = 0u;
    for (p += 9; *p >= '0' && *p <= '9'; p++) {
        v = v * 10u + static_cast<uint32_t>(*p - '0');
    }
    return v;
}

void flush_log_line() {
    if (s_log_len == 0u) {
        return;
    }
    s_log_line[s_log_len] = '\0';
    if (s_last_error[0] == '\0') { /* TFLM's errors cascade: the first line since init is the cause */
        memcpy(s_last_error, s_log_line, s_log_len + 1u);
    }
    const uint32_t missing = parse_missing(s_log_line);
    if (missing > s_missing) {
        s_missing = missing;
    }
    s_log_len = 0u;
    hk_core_log(s_log_line);
}

/* TFLM's DebugLog callback: pieces of text, a line ends with "\r\n" (MicroPrintf). */
void on_tflm_log(const char *text) {
    for (; *text != '\0'; text++) {
        if (*text == '\r' || *text == '\n') {
            flush_log_line();
        } else if (s_log_len < HK_LOG_LINE - 1u) {
            s_log_line[s_log_len++] = *text;
        }
    }
}
#endif

void fill_tensor(hk_tensor_info_t *t, const TfLiteTensor *src) {
    memset(t, 0, sizeof *t);
    t->dtype = static_cast<uint8_t>(wire_dtype(src->type));
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
    memcpy(info->model_sha256, sha, sizeof sha);
}

void teardown() {
    if (s_interp != nullptr) {
        s_interp->~MicroInterpreter();
        s_interp = nullptr;
    }
    if (s_hooked_resolver != nullptr) {
        s_hooked_resolver->~HookedResolver();
        s_hooked_resolver = nullptr;
    }
    if (s_resolver != nullptr) {
        s_resolver->~HkModelOpResolver();
        s_resolver = nullptr;
    }
    s_hooked_n = 0u;
    s_hooks_ok = true;
    s_op_count = 0u;
    s_trace = Trace();
    s_input = s_output = nullptr;
    s_status = HK_ENGINE_ERR_NOT_READY;
}

} // namespace

extern "C" int32_t hk_engine_init(hk_engine_info_t *info) {
    teardown();
    fill_static(info);
#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
    RegisterDebugLogCallback(on_tflm_log);
    s_log_len = 0u;
    s_last_error[0] = '\0';
    s_missing = 0u;
#endif
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
    if (HK_ARENA_SIZE < k_tflm_floor) { /* too small for TFLM's bookkeeping: it would crash */
        info->arena_used = k_tflm_floor; /* at least this much (the model needs more) */
#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
        strcpy(s_last_error, "arena smaller than TFLM's own allocator objects; not constructed");
        hk_core_log(s_last_error);
#endif
        s_status = info->status = HK_ENGINE_ERR_ALLOCATE;
        return s_status;
    }
    s_hooked_resolver = new (s_hooked_resolver_mem) HookedResolver(*s_resolver);
    s_interp = new (s_interp_mem) tflite::MicroInterpreter(model, *s_hooked_resolver, s_arena, HK_ARENA_SIZE);
    if (s_interp->AllocateTensors() != kTfLiteOk) {
        /* arena too small or an op missing: report how much was needed so far */
        info->arena_used = static_cast<uint32_t>(s_interp->arena_used_bytes());
#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
        flush_log_line();
        if (s_missing > 0u) { /* the arena was too small: at least arena_size + the shortfall, */
            /* rounded up to TFLM's 16-byte arena alignment (it uses floor16 of the size) */
            info->arena_used = (HK_ARENA_SIZE + s_missing + 15u) & ~15u;
        }
#endif
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
    s_op_count = static_cast<uint16_t>(model->subgraphs()->Get(0)->operators()->size());
    info->op_count = s_op_count;
    /* operator indices count the main subgraph's operators: a model with more subgraphs (IF, WHILE)
     * would count theirs too */
    if (s_hooks_ok && model->subgraphs()->size() == 1u) {
        info->features = HK_ENGINE_FEATURE_PROFILE | HK_ENGINE_FEATURE_TENSOR;
    }
    s_status = info->status = HK_ENGINE_OK;
    return s_status;
}

extern "C" uint8_t *hk_engine_input(void) {
    return s_input != nullptr ? s_input_copy : nullptr;
}

extern "C" const char *hk_engine_error_text(void) {
#if defined(HK_TFLM_LOG_CALLBACK) && HK_TFLM_LOG_CALLBACK
    return s_last_error[0] != '\0' ? s_last_error : nullptr;
#else
    return nullptr;
#endif
}

extern "C" const uint8_t *hk_engine_output(void) {
    return s_output != nullptr ? s_output->data.uint8 : nullptr;
}

extern "C" int32_t hk_engine_invoke(uint32_t *cycles) {
    if (s_status != HK_ENGINE_OK) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    memcpy(s_input->data.uint8, s_input_copy, HK_MODEL_INPUT_BYTES); /* Invoke() clobbers it */
    s_op_index = 0u;
    const uint32_t start = hk_platform_cycles();
    const TfLiteStatus st = s_interp->Invoke();
    *cycles = hk_platform_cycles() - start; /* unsigned wrap-around gives the right difference */
    return st == kTfLiteOk ? HK_ENGINE_OK : HK_ENGINE_ERR_INVOKE;
}

namespace {
/* One Invoke() with s_trace armed as `armed`; s_trace is disarmed afterwards whatever happened and
 * what it recorded is returned in *done. */
int32_t traced_invoke(const Trace &armed, uint32_t *cycles, Trace *done) {
    s_trace = armed;
    const int32_t st = hk_engine_invoke(cycles);
    *done = s_trace;
    s_trace = Trace();
    if (st != HK_ENGINE_OK) {
        return st;
    }
    return s_op_index == s_op_count ? HK_ENGINE_OK : HK_ENGINE_ERR_UNSUPPORTED; /* another subgraph ran */
}
} // namespace

extern "C" int32_t hk_engine_profile(hk_op_cycles_t *ops, uint16_t max_ops, uint32_t *total) {
    if (s_status != HK_ENGINE_OK) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    Trace armed;
    armed.ops = ops;
    armed.max_ops = max_ops;
    Trace done;
    return traced_invoke(armed, total, &done);
}

extern "C" int32_t hk_engine_capture(uint16_t op, uint32_t offset, uint8_t *dst, uint32_t *len, uint32_t *nbytes,
                                     uint16_t *dtype, uint16_t *tensor_index) {
    if (s_status != HK_ENGINE_OK) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    if (op >= s_op_count) {
        return HK_ENGINE_ERR_UNSUPPORTED;
    }
    Trace armed;
    armed.capture_op = op;
    armed.offset = offset;
    armed.dst = dst;
    armed.len = *len;
    Trace done;
    uint32_t cycles = 0u;
    const int32_t st = traced_invoke(armed, &cycles, &done);
    if (st != HK_ENGINE_OK) {
        return st;
    }
    if (!done.captured) {
        return HK_ENGINE_ERR_UNSUPPORTED; /* the operator has no output tensor the engine can read */
    }
    *len = done.len;
    *nbytes = done.nbytes;
    *dtype = done.dtype;
    *tensor_index = done.tensor;
    return HK_ENGINE_OK;
}

extern "C" void hk_engine_reset(void) { teardown(); }
