/*
 * hk_engine.h - the inference engine seen by the link core.
 *
 * One implementation per platform:
 *   - engine/hk_engine_tflm.cc        TFLM MicroInterpreter (neuralSPOT boards, QEMU Cortex-M)
 *   - platform/host/hk_engine_host.c  the host port: TFLM reference kernels via the tflite-micro
 *                                     runtime (embedded Python), same model bytes
 * The core never allocates: the engine owns the input/output buffers.
 */
#ifndef HK_ENGINE_H
#define HK_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HK_MAX_DIMS 6

/* Tensor element types, numbered as in the TFLite schema (TensorType). */
typedef enum {
    HK_DTYPE_FLOAT32 = 0,
    HK_DTYPE_INT32 = 2,
    HK_DTYPE_UINT8 = 3,
    HK_DTYPE_INT16 = 7,
    HK_DTYPE_INT8 = 9,
    HK_DTYPE_FLOAT16 = 1
} hk_dtype_t;

typedef struct {
    uint8_t dtype;               /* hk_dtype_t */
    uint8_t ndim;
    int32_t dims[HK_MAX_DIMS];
    float scale;                 /* 0 when not quantized */
    int32_t zero_point;
    uint32_t bytes;
} hk_tensor_info_t;

/* Engine status codes; the link reports them verbatim to the host, which decodes them to text. */
typedef enum {
    HK_ENGINE_OK = 0,
    HK_ENGINE_ERR_MODEL_SCHEMA = 1,     /* model flatbuffer version/schema not supported */
    HK_ENGINE_ERR_ALLOCATE = 2,         /* AllocateTensors failed: arena too small or op missing */
    HK_ENGINE_ERR_INVOKE = 3,           /* Invoke() failed */
    HK_ENGINE_ERR_NOT_READY = 4,        /* init failed earlier; nothing can run */
    HK_ENGINE_ERR_MODEL_TOO_BIG = 5,    /* model does not fit the board's MRAM/flash */
    HK_ENGINE_ERR_ARENA_TOO_BIG = 6,    /* arena does not fit the board's SRAM */
    HK_ENGINE_ERR_IO = 7,               /* host port: could not load the model / runtime */
    HK_ENGINE_ERR_UNSUPPORTED = 8,      /* this engine has no per-operator profile / tensor capture */
    HK_ENGINE_ERR_INIT_FAULT = 9        /* set by the link core, never by an engine: the previous boot
                                           faulted (or was reset) inside hk_engine_init, so this boot
                                           did not run it again (hk_platform_noinit_word) */
} hk_engine_status_t;

/* hk_engine_info_t.features: what the engine can do besides running the model (HELLO reports them). */
#define HK_ENGINE_FEATURE_PROFILE 0x0001u /* hk_engine_profile() (= HK_FEATURE_PROFILE on the wire) */
#define HK_ENGINE_FEATURE_TENSOR 0x0002u  /* hk_engine_capture() (= HK_FEATURE_TENSOR) */

/* One operator of a profiled Invoke(). */
typedef struct {
    uint16_t builtin_code;       /* TFLite BuiltinOperator */
    uint32_t cycles;             /* the platform's counter during the operator's Invoke */
} hk_op_cycles_t;

typedef struct {
    int32_t status;              /* hk_engine_status_t of init (AllocateTensors) */
    uint32_t arena_size;         /* bytes reserved for the tensor arena */
    uint32_t arena_used;         /* bytes the interpreter used (0 if unknown); when the arena was too
                                    small: at least the bytes needed (arena_size + the shortfall) */
    uint32_t model_size;         /* bytes of the model flatbuffer */
    uint8_t model_sha256[32];    /* SHA-256 of the model flatbuffer, as exported */
    hk_tensor_info_t input;
    hk_tensor_info_t output;
    uint16_t op_count;           /* operators in the model's main subgraph (0 if unknown) */
    uint16_t features;           /* HK_ENGINE_FEATURE_* */
} hk_engine_info_t;

/* Initialise the interpreter (once; again after hk_engine_reset). Fills *info even on failure.
 * It may crash instead (TFLM HardFaults on some bad arenas/models): the core then learns of it on the
 * next boot from a marker in reset-surviving RAM and answers HELLO without calling this again. */
int32_t hk_engine_init(hk_engine_info_t *info);

/* Buffers owned by the engine; valid after a successful init. The input stays as written until
 * the next write: every invoke runs on it (an engine whose runtime reuses the input tensor's memory
 * keeps its own copy). */
uint8_t *hk_engine_input(void);
const uint8_t *hk_engine_output(void);

/* Run one inference on the current input; *cycles receives what the platform's counter
 * (hk_platform_cycles(), see hk_platform.h) advanced during Invoke(). The counter's kind and rate
 * are the platform's business: HELLO reports them, the engine does not know them. */
int32_t hk_engine_invoke(uint32_t *cycles);

/* Run one inference on the current input timing every operator: ops[i] for the first max_ops
 * operators (in execution order), *total the whole Invoke(). Optional (HK_ENGINE_FEATURE_PROFILE):
 * the core's weak default answers HK_ENGINE_ERR_UNSUPPORTED. */
int32_t hk_engine_profile(hk_op_cycles_t *ops, uint16_t max_ops, uint32_t *total);

/* Run one inference on the current input and copy bytes [offset, offset + *len) of operator op's
 * first output tensor into dst while it is alive (*len is cut to the tensor's end). *nbytes, *dtype
 * and *tensor_index describe the tensor. Optional (HK_ENGINE_FEATURE_TENSOR), default unsupported. */
int32_t hk_engine_capture(uint16_t op, uint32_t offset, uint8_t *dst, uint32_t *len, uint32_t *nbytes,
                          uint16_t *dtype, uint16_t *tensor_index);

/* Tear down and re-initialise state (RESET command). */
void hk_engine_reset(void);

/* The engine's first error message since init (e.g. TFLM's "Requested: 8736, available 5684, missing: 3052"),
 * NULL if none. Optional: the core has a weak default returning NULL. */
const char *hk_engine_error_text(void);

#ifdef __cplusplus
}
#endif

#endif /* HK_ENGINE_H */
