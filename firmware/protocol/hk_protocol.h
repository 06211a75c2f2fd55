/*
 * hk_protocol.h - the hkdeploy wire protocol, version 3.
 * GENERATED from firmware/protocol/spec.yaml by `python -m tools.gen_protocol` -- do not edit.
 *
 * Packet on the wire: COBS(header + payload + crc32) followed by the delimiter 0x00.
 * All integers little-endian; structs are packed and their sizes checked below.
 */
#ifndef HK_PROTOCOL_H
#define HK_PROTOCOL_H

#include <stdint.h>

#define HK_PROTOCOL_VERSION 3u
#define HK_DELIMITER 0x00u
#define HK_HEADER_SIZE 8u
#define HK_CRC_SIZE 4u
#define HK_MIN_PAYLOAD 64u
#define HK_DEFAULT_PAYLOAD 256u

/* Message types */
#define HK_MSG_HELLO 0x01u /* Handshake: negotiates the payload size and describes firmware, board and model. */
#define HK_MSG_SET_INPUT 0x02u /* Write a chunk of the input tensor at offset (MORE set on all but the last chunk). */
#define HK_MSG_INVOKE 0x03u /* Run one inference on the current input. */
#define HK_MSG_GET_OUTPUT 0x04u /* Read a chunk of the output tensor. */
#define HK_MSG_RUN 0x05u /* Input chunks in; the last chunk runs Invoke() and the answer carries cycles and the output. */
#define HK_MSG_PERF 0x06u /* Time Invoke(): W warm-up runs, then N measured runs on the current input. */
#define HK_MSG_RESET 0x07u /* Soft reset: the device answers, then re-initialises its engine and link state. */
#define HK_MSG_LOG 0x08u /* Device text (EVENT flag, seq 0), e.g. TFLM error messages. */
#define HK_MSG_STATS 0x09u /* The link core's counters since power-on (a RESET keeps them): how many frames, retries and Invoke() calls the device saw. */
#define HK_MSG_PROFILE 0x0Au /* Per-operator cycles of one Invoke() on the current input. first_op 0 runs it and answers the first entries; first_op > 0 pages through that run's entries. */
#define HK_MSG_TENSOR 0x0Bu /* Run Invoke() on the current input and answer a chunk of operator op_index's first output tensor (for the per-layer diff). */
#define HK_MSG_NACK 0x7Fu /* The device could not accept a packet; status says why. seq echoes the request when known. */

/* Header flags */
#define HK_FLAG_RESPONSE 0x01u /* device -> host answer to the request with the same seq */
#define HK_FLAG_MORE 0x02u /* more chunks of this tensor follow */
#define HK_FLAG_EVENT 0x04u /* unsolicited device -> host packet (LOG); seq 0 */
#define HK_FLAG_RETRY 0x08u /* host retransmission of a request (same seq): answer from the cache */

/* HELLO features: what the engine can do besides running the model */
#define HK_FEATURE_PROFILE 0x0001u /* PROFILE: per-operator cycles of one Invoke() */
#define HK_FEATURE_TENSOR 0x0002u /* TENSOR: an operator's output tensor, for the per-layer diff */

/* Status codes (texts and hints live on the host) */
#define HK_STATUS_OK 0u
#define HK_STATUS_ENGINE_MODEL_SCHEMA 1u
#define HK_STATUS_ENGINE_ALLOCATE 2u
#define HK_STATUS_ENGINE_INVOKE 3u
#define HK_STATUS_ENGINE_NOT_READY 4u
#define HK_STATUS_ENGINE_MODEL_TOO_BIG 5u
#define HK_STATUS_ENGINE_ARENA_TOO_BIG 6u
#define HK_STATUS_ENGINE_IO 7u
#define HK_STATUS_ENGINE_UNSUPPORTED 8u
#define HK_STATUS_ENGINE_INIT_FAULT 9u
#define HK_STATUS_BAD_CRC 16u
#define HK_STATUS_BAD_LENGTH 17u
#define HK_STATUS_UNKNOWN_TYPE 18u
#define HK_STATUS_BAD_OFFSET 19u
#define HK_STATUS_PAYLOAD_TOO_BIG 20u
#define HK_STATUS_BUSY 21u
#define HK_STATUS_BAD_REQUEST 22u
#define HK_STATUS_VERSION 23u

#if defined(__GNUC__)
#define HK_PACKED __attribute__((packed))
#else
#error "hk_protocol.h needs a compiler that supports packed structs"
#endif

typedef struct HK_PACKED {
    uint8_t type;
    uint8_t flags;
    uint16_t seq;
    uint16_t status;
    uint16_t length;
} hk_header_t;
_Static_assert(sizeof(hk_header_t) == 8, "hk_header_t size");

/* One operator of a PROFILE answer. */
typedef struct HK_PACKED {
    uint16_t builtin_code; /* TFLite BuiltinOperator of the operator */
    uint16_t reserved;
    uint32_t cycles; /* what the platform's counter advanced during the operator's Invoke */
} hk_wire_op_t;
_Static_assert(sizeof(hk_wire_op_t) == 8, "hk_wire_op_t size");

/* A tensor as HELLO describes it. */
typedef struct HK_PACKED {
    uint8_t dtype; /* TFLite TensorType (9 int8, 3 uint8, 7 int16, 0 float32) */
    uint8_t ndim;
    uint16_t reserved;
    int32_t dims[6];
    float scale;
    int32_t zero_point;
    uint32_t nbytes; /* size of the tensor in bytes */
} hk_wire_tensor_t;
_Static_assert(sizeof(hk_wire_tensor_t) == 40, "hk_wire_tensor_t size");

/* HELLO request */
typedef struct HK_PACKED {
    uint16_t host_max_payload;
    uint16_t protocol_version;
} hk_hello_req_t;
_Static_assert(sizeof(hk_hello_req_t) == 4, "hk_hello_req_t size");

/* HELLO response */
typedef struct HK_PACKED {
    uint16_t protocol_version;
    uint16_t max_payload; /* min(device, host) maximum payload */
    uint16_t rx_credits; /* requests the host may have unanswered at once (each answer returns one) */
    int16_t alloc_status; /* engine status of AllocateTensors (0 = ok) */
    uint32_t arena_size;
    uint32_t arena_used;
    uint32_t model_size;
    uint32_t cpu_hz; /* counts per second of the platform's counter (cycles -> microseconds; 0 if unknown) */
    uint8_t model_sha256[32];
    hk_wire_tensor_t input;
    hk_wire_tensor_t output;
    char board[24];
    char build_id[24];
    uint16_t counter_kind; /* what cycles count (hk_platform.h hk_counter_kind_t): 0 none, 1 MCU core cycles, 2 host nanoseconds (virtual EVB), 3 SysTick ticks of an emulated Cortex-M (QEMU -icount) */
    uint16_t op_count; /* operators in the model's main subgraph (0 if the engine did not initialise) */
    uint16_t features; /* what the engine can do besides running the model: bit 0 PROFILE, bit 1 TENSOR */
} hk_hello_rsp_t;
_Static_assert(sizeof(hk_hello_rsp_t) == 190, "hk_hello_rsp_t size");

/* SET_INPUT request (followed by data: variable length) */
typedef struct HK_PACKED {
    uint32_t offset;
} hk_set_input_req_t;
_Static_assert(sizeof(hk_set_input_req_t) == 4, "hk_set_input_req_t size");

/* SET_INPUT response */
typedef struct HK_PACKED {
    uint32_t received; /* bytes of the input tensor written so far */
    uint16_t credits; /* the window: requests the host may have unanswered at once */
} hk_set_input_rsp_t;
_Static_assert(sizeof(hk_set_input_rsp_t) == 6, "hk_set_input_rsp_t size");

/* INVOKE response */
typedef struct HK_PACKED {
    uint32_t cycles;
    uint32_t micros;
} hk_invoke_rsp_t;
_Static_assert(sizeof(hk_invoke_rsp_t) == 8, "hk_invoke_rsp_t size");

/* GET_OUTPUT request */
typedef struct HK_PACKED {
    uint32_t offset;
    uint16_t length;
} hk_get_output_req_t;
_Static_assert(sizeof(hk_get_output_req_t) == 6, "hk_get_output_req_t size");

/* GET_OUTPUT response (followed by data: variable length) */
typedef struct HK_PACKED {
    uint32_t offset;
} hk_get_output_rsp_t;
_Static_assert(sizeof(hk_get_output_rsp_t) == 4, "hk_get_output_rsp_t size");

/* RUN request (followed by data: variable length) */
typedef struct HK_PACKED {
    uint32_t offset;
} hk_run_req_t;
_Static_assert(sizeof(hk_run_req_t) == 4, "hk_run_req_t size");

/* RUN response (followed by data: variable length) */
typedef struct HK_PACKED {
    uint32_t cycles;
    uint32_t micros;
    uint32_t output_bytes; /* whole output size; fetch the rest with GET_OUTPUT if larger than data */
} hk_run_rsp_t;
_Static_assert(sizeof(hk_run_rsp_t) == 12, "hk_run_rsp_t size");

/* PERF request */
typedef struct HK_PACKED {
    uint16_t warmup;
    uint16_t runs;
} hk_perf_req_t;
_Static_assert(sizeof(hk_perf_req_t) == 4, "hk_perf_req_t size");

/* PERF response */
typedef struct HK_PACKED {
    uint16_t runs;
    uint32_t cycles_min;
    uint32_t cycles_median;
    uint32_t cycles_max;
    uint32_t cpu_hz; /* clock that converts cycles to time */
    uint32_t us_min; /* cycles_min in microseconds (cycles * 1e6 / cpu_hz, 0 if cpu_hz is 0) */
    uint32_t us_median;
    uint32_t us_max;
} hk_perf_rsp_t;
_Static_assert(sizeof(hk_perf_rsp_t) == 30, "hk_perf_rsp_t size");

/* STATS response */
typedef struct HK_PACKED {
    uint32_t frames_ok; /* valid request frames */
    uint32_t frames_bad; /* damaged frames dropped (NACKed) */
    uint32_t cache_hits; /* retries answered from the retry cache (nothing ran twice) */
    uint32_t invokes; /* Invoke() calls (INVOKE, RUN, PERF runs) */
    uint32_t nacks;
    uint32_t inits; /* link core initialisations: 1 after power-on, +1 per RESET */
} hk_stats_rsp_t;
_Static_assert(sizeof(hk_stats_rsp_t) == 24, "hk_stats_rsp_t size");

/* PROFILE request */
typedef struct HK_PACKED {
    uint16_t first_op;
} hk_profile_req_t;
_Static_assert(sizeof(hk_profile_req_t) == 2, "hk_profile_req_t size");

/* PROFILE response (followed by data: variable length) */
typedef struct HK_PACKED {
    uint16_t op_count; /* operators in the model */
    uint16_t recorded; /* operators timed (the device keeps at most HK_PROFILE_MAX_OPS) */
    uint16_t first_op; /* index of the first entry in data */
    uint16_t reserved;
    uint32_t cycles_total; /* the whole Invoke() (the entries' sum plus the interpreter's own work) */
} hk_profile_rsp_t;
_Static_assert(sizeof(hk_profile_rsp_t) == 12, "hk_profile_rsp_t size");

/* TENSOR request */
typedef struct HK_PACKED {
    uint32_t offset;
    uint16_t op_index;
    uint16_t length; /* bytes wanted (cut to the payload and to the tensor's end) */
} hk_tensor_req_t;
_Static_assert(sizeof(hk_tensor_req_t) == 8, "hk_tensor_req_t size");

/* TENSOR response (followed by data: variable length) */
typedef struct HK_PACKED {
    uint32_t offset;
    uint32_t nbytes; /* size of the whole tensor */
    uint16_t op_index;
    uint16_t tensor_index; /* the tensor's index in the model's subgraph */
    uint16_t dtype; /* TFLite TensorType */
} hk_tensor_rsp_t;
_Static_assert(sizeof(hk_tensor_rsp_t) == 14, "hk_tensor_rsp_t size");

#endif /* HK_PROTOCOL_H */
