/*
 * hk_engine_host.c - the host port's engine: TFLM's reference kernels through the tflite-micro
 * runtime (its Python binding, embedded with the CPython C API). Not a re-implementation: the same
 * kernels, the same model bytes (compiled in from the export's model_buffer.h).
 *
 * The runtime segfaults on arenas far below what the model needs, so an arena below the smallest one
 * the export proved (HK_MODEL_ARENA_HOST_MIN) is refused up front, as AllocateTensors would refuse it.
 * When the export measured the 32-bit target (HK_MODEL_ARENA_MIN32), that is the board's need: an
 * arena below it is refused, and the runtime itself gets at least the host minimum (64-bit pointers
 * need more than the board does).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../core/hk_core.h"
#include "../../engine/hk_engine.h"
#include "../../protocol/hk_protocol.h"
#include "../../core/hk_platform.h"
#include "hk_host.h"
#include "model_buffer.h"
#include "model_config.h"

#ifndef HK_HOST_ARENA_SIZE
#define HK_HOST_ARENA_SIZE HK_MODEL_ARENA_SIZE /* a test build may override it */
#endif
#ifdef HK_MODEL_ARENA_MIN32
#define HK_HOST_ARENA_NEED HK_MODEL_ARENA_MIN32 /* what the 32-bit board needs (measured) */
#else
#define HK_HOST_ARENA_NEED HK_MODEL_ARENA_HOST_MIN
#endif
#define HK_HOST_RUNTIME_ARENA \
    (HK_HOST_ARENA_SIZE > HK_MODEL_ARENA_HOST_MIN ? HK_HOST_ARENA_SIZE : HK_MODEL_ARENA_HOST_MIN)

static uint8_t s_in[HK_MODEL_INPUT_BYTES];
static uint8_t s_out[HK_MODEL_OUTPUT_BYTES];
static PyObject *s_engine; /* instance of the helper class below, NULL when not ready */
static uint16_t s_op_count;
static int s_py_ready;

static const char k_helper[] =
    "import hashlib\n"
    "import numpy as np\n"
    "def sha256(model):\n"
    "    return hashlib.sha256(bytes(model)).digest()\n"
    "class Engine:\n"
    "    def __init__(self, model, arena):\n"
    "        from tflite_micro.python.tflite_micro import runtime\n"
    "        self.it = runtime.Interpreter.from_bytes(bytes(model), arena_size=arena)\n"
    "        d = self.it.get_input_details(0)\n"
    "        self.shape = tuple(int(v) for v in d['shape'])\n"
    "        self.dtype = d['dtype']\n"
    "        self.model = bytes(model)\n"
    "        self.arena = arena\n"
    "        g = runtime.convert_bytearray_to_object(bytearray(self.model)).subgraphs\n"
    "        self.subgraphs = len(g)\n"
    "        self.outputs = [int(op.outputs[0]) if len(op.outputs) else -1 for op in g[0].operators]\n"
    "        self.types = [int(t.type) for t in g[0].tensors]\n"
    "        size = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8}\n"
    "        self.all_bytes = sum(size.get(int(t.type), 8) * int(np.prod(t.shape if t.shape is not None else [1]))\n"
    "                             for t in g[0].tensors)\n"
    "        self.keep = None\n"
    "    def run(self, data):\n"
    "        self.it.set_input(np.frombuffer(data, dtype=self.dtype).reshape(self.shape), 0)\n"
    "        self.it.invoke()\n"
    "        return np.ascontiguousarray(self.it.get_output(0)).tobytes()\n"
    "    def capture(self, data, op):\n"
    "        from tflite_micro.python.tflite_micro import runtime\n"
    "        if self.keep is None:\n"
    "            self.keep = runtime.Interpreter.from_bytes(self.model, arena_size=self.arena + 2 * self.all_bytes,\n"
    "                intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)\n"
    "        self.keep.set_input(np.frombuffer(data, dtype=self.dtype).reshape(self.shape), 0)\n"
    "        self.keep.invoke()\n"
    "        index = self.outputs[op]\n"
    "        t = self.keep.GetTensor(index, 0)['tensor_data']\n"
    "        return index, self.types[index], np.ascontiguousarray(t).tobytes()\n";

static PyObject *s_globals;

static void log_python_error(const char *what) {
    char msg[HK_MIN_PAYLOAD + 1];
    PyObject *type = NULL, *value = NULL, *tb = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    snprintf(msg, sizeof msg, "%s: %s", what, text ? PyUnicode_AsUTF8(text) : "unknown error");
    fprintf(stderr, "hk_host: %s\n", msg);
    hk_core_log(msg);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static void fill_tensor(hk_tensor_info_t *t, uint8_t dtype, uint8_t ndim, const int32_t *dims, float scale,
                        int32_t zp, uint32_t bytes) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (unsigned i = 0; i < ndim && i < HK_MAX_DIMS; i++) {
        t->dims[i] = dims[i];
    }
    t->scale = scale;
    t->zero_point = zp;
    t->bytes = bytes;
}

int32_t hk_engine_init(hk_engine_info_t *info) {
    static const int32_t in_dims[] = HK_MODEL_INPUT_DIMS;
    static const int32_t out_dims[] = HK_MODEL_OUTPUT_DIMS;
    char msg[HK_MIN_PAYLOAD + 1];
    memset(info, 0, sizeof *info);
    info->arena_size = HK_HOST_ARENA_SIZE;
    info->model_size = HK_MODEL_LEN;
    fill_tensor(&info->input, HK_MODEL_INPUT_DTYPE, HK_MODEL_INPUT_NDIM, in_dims, HK_MODEL_INPUT_SCALE,
                HK_MODEL_INPUT_ZERO_POINT, HK_MODEL_INPUT_BYTES);
    fill_tensor(&info->output, HK_MODEL_OUTPUT_DTYPE, HK_MODEL_OUTPUT_NDIM, out_dims, HK_MODEL_OUTPUT_SCALE,
                HK_MODEL_OUTPUT_ZERO_POINT, HK_MODEL_OUTPUT_BYTES);

    if (!s_py_ready) {
        Py_InitializeEx(0);
        s_globals = PyDict_New();
        PyDict_SetItemString(s_globals, "__builtins__", PyEval_GetBuiltins());
        PyObject *r = PyRun_String(k_helper, Py_file_input, s_globals, s_globals);
        if (!r) {
            log_python_error("cannot start the TFLM runtime");
            info->status = HK_ENGINE_ERR_IO;
            return info->status;
        }
        Py_DECREF(r);
        s_py_ready = 1;
    }
    PyObject *model = PyBytes_FromStringAndSize((const char *)HK_MODEL_DATA, (Py_ssize_t)HK_MODEL_LEN);
    PyObject *digest = PyObject_CallFunction(PyDict_GetItemString(s_globals, "sha256"), "O", model);
    if (digest && PyBytes_Size(digest) == 32) {
        memcpy(info->model_sha256, PyBytes_AsString(digest), 32);
    }
    Py_XDECREF(digest);

    if (g_hk_host_limits.mram_bytes && HK_MODEL_LEN > g_hk_host_limits.mram_bytes) {
        snprintf(msg, sizeof msg, "model %u B > MRAM %lu B", (unsigned)HK_MODEL_LEN, g_hk_host_limits.mram_bytes);
        hk_core_log(msg);
        info->status = HK_ENGINE_ERR_MODEL_TOO_BIG;
    } else if (g_hk_host_limits.sram_bytes && HK_HOST_ARENA_SIZE > g_hk_host_limits.sram_bytes) {
        snprintf(msg, sizeof msg, "arena %u B > SRAM %lu B", (unsigned)HK_HOST_ARENA_SIZE, g_hk_host_limits.sram_bytes);
        hk_core_log(msg);
        info->status = HK_ENGINE_ERR_ARENA_TOO_BIG;
    } else if (HK_HOST_ARENA_SIZE < HK_HOST_ARENA_NEED) {
        snprintf(msg, sizeof msg, "AllocateTensors failed: arena %u B, the model needs %u B",
                 (unsigned)HK_HOST_ARENA_SIZE, (unsigned)HK_HOST_ARENA_NEED);
        hk_core_log(msg);
        info->status = HK_ENGINE_ERR_ALLOCATE;
    } else {
        Py_XDECREF(s_engine);
        s_engine = PyObject_CallFunction(PyDict_GetItemString(s_globals, "Engine"), "OI", model,
                                         (unsigned)HK_HOST_RUNTIME_ARENA);
        if (!s_engine) {
            log_python_error("AllocateTensors failed");
            info->status = HK_ENGINE_ERR_ALLOCATE;
        } else {
            info->arena_used = HK_HOST_ARENA_NEED; /* the export's probe (32-bit if measured, else host) */
            info->status = HK_ENGINE_OK;
            PyObject *outputs = PyObject_GetAttrString(s_engine, "outputs");
            PyObject *subgraphs = PyObject_GetAttrString(s_engine, "subgraphs");
            if (outputs != NULL && subgraphs != NULL) {
                s_op_count = (uint16_t)PyList_Size(outputs);
                info->op_count = s_op_count;
                /* the runtime has no per-operator timer: no PROFILE; TENSOR through a second
                 * interpreter that preserves every tensor (single-subgraph models) */
                info->features = PyLong_AsLong(subgraphs) == 1 ? HK_ENGINE_FEATURE_TENSOR : 0u;
            }
            Py_XDECREF(outputs);
            Py_XDECREF(subgraphs);
            PyErr_Clear();
        }
    }
    Py_DECREF(model);
    return info->status;
}

uint8_t *hk_engine_input(void) { return s_in; }

const uint8_t *hk_engine_output(void) { return s_out; }

int32_t hk_engine_invoke(uint32_t *cycles) {
    *cycles = 0u;
    if (!s_engine) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    const uint32_t start = hk_platform_cycles(); /* host ns (hk_host_main.c) */
    PyObject *out = PyObject_CallMethod(s_engine, "run", "y#", (const char *)s_in, (Py_ssize_t)sizeof s_in);
    const uint32_t took = hk_platform_cycles() - start;
    if (!out || PyBytes_Size(out) != (Py_ssize_t)sizeof s_out) {
        if (!out) {
            log_python_error("Invoke failed");
        }
        Py_XDECREF(out);
        return HK_ENGINE_ERR_INVOKE;
    }
    memcpy(s_out, PyBytes_AsString(out), sizeof s_out);
    Py_DECREF(out);
    *cycles = took; /* host nanoseconds (wraps after 4.29 s: an Invoke() that long is not timed) */
    return HK_ENGINE_OK;
}

int32_t hk_engine_capture(uint16_t op, uint32_t offset, uint8_t *dst, uint32_t *len, uint32_t *nbytes,
                          uint16_t *dtype, uint16_t *tensor_index) {
    if (!s_engine) {
        return HK_ENGINE_ERR_NOT_READY;
    }
    if (op >= s_op_count) {
        return HK_ENGINE_ERR_UNSUPPORTED;
    }
    PyObject *r = PyObject_CallMethod(s_engine, "capture", "y#H", (const char *)s_in, (Py_ssize_t)sizeof s_in, op);
    int index = 0, type = 0;
    PyObject *bytes = NULL;
    if (!r || !PyArg_ParseTuple(r, "iiS", &index, &type, &bytes) || index < 0) {
        log_python_error("capture failed");
        Py_XDECREF(r);
        return HK_ENGINE_ERR_INVOKE;
    }
    const uint32_t size = (uint32_t)PyBytes_Size(bytes);
    uint32_t n = offset < size ? size - offset : 0u;
    if (n > *len) {
        n = *len;
    }
    memcpy(dst, PyBytes_AsString(bytes) + (offset < size ? offset : size), n);
    *len = n;
    *nbytes = size;
    *dtype = (uint16_t)type;
    *tensor_index = (uint16_t)index;
    Py_DECREF(r);
    return HK_ENGINE_OK;
}

void hk_engine_reset(void) {
    memset(s_in, 0, sizeof s_in);
    memset(s_out, 0, sizeof s_out);
}

void hk_host_engine_shutdown(void) {
    Py_XDECREF(s_engine);
    s_engine = NULL;
}
