/*
 * hk_dut.c - the MLPerf Tiny DUT front end (see hk_dut.h). Our own implementation of the runner's
 * line protocol; it fixes three defects of the reference port: `db load N` is checked against the
 * model input (never overflows), results print every value correctly rounded (1.0 is "1.000000"),
 * and timestamps come from a 64-bit microsecond counter (no wrap after 71.6 minutes).
 */
#include "hk_dut.h"

#include <string.h>

#include "../core/hk_platform.h"
#include "../engine/hk_engine.h"

#define HK_DUT_PROFILE "ULPMark for tinyML Firmware V0.0.1"
#define HK_DUT_MAX_TOKENS 4u
#define HK_DUT_OUT_BUF 128u

static const hk_dut_config_t *s_cfg;
static hk_engine_info_t s_info;
static int32_t s_init_status = HK_ENGINE_ERR_NOT_READY;

/* command assembly */
static char s_cmd[HK_DUT_CMD_MAX + 1u];
static size_t s_cmd_len;
static int s_cmd_overlong;

/* db load state */
static size_t s_expect; /* bytes announced by db load (0: no load in progress) */
static size_t s_loaded; /* bytes received so far */
static int s_input_ready;
static int s_have_results;

/* ---- output -------------------------------------------------------------------------------- */

static char s_out[HK_DUT_OUT_BUF];
static size_t s_out_len;

static void out_flush(void) {
    size_t done = 0u;
    while (done < s_out_len) {
        size_t n = hk_platform_write((const uint8_t *)s_out + done, s_out_len - done);
        if (n == 0u) {
            break; /* the link refused (bounded by the platform): drop the rest */
        }
        done += n;
    }
    s_out_len = 0u;
}

static void out_char(char c) {
    if (s_out_len == sizeof s_out) {
        out_flush();
    }
    s_out[s_out_len++] = c;
}

static void out_str(const char *s) {
    while (*s != '\0') {
        out_char(*s++);
    }
}

static void out_u64(uint64_t v) {
    char digits[20];
    size_t n = 0u;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0u) {
        out_char(digits[--n]);
    }
}

static void out_end(void) {
    out_str("\r\n");
    out_flush();
}

static void out_line(const char *s) {
    out_str(s);
    out_end();
}

static void ready(void) { out_line("m-ready"); }

static void error_begin(void) { out_str("e-["); }

static void error_end(void) {
    out_char(']');
    out_end();
}

static void error_line(const char *msg) {
    error_begin();
    out_str(msg);
    error_end();
}

/* A float with HK_DUT_RESULT_DECIMALS decimals, correctly rounded (half to even) from its exact
 * binary value: v * 10^6 is exact in a double for every float (24 + 20 mantissa bits < 53). */
static void out_fixed(float f) {
    double v = (double)f;
    if (v != v) {
        out_str("nan");
        return;
    }
    if (v < 0.0) {
        out_char('-');
        v = -v;
    }
    if (v > 3.5e38) {
        out_str("inf");
        return;
    }
    const uint64_t scale = 1000000u; /* 10^HK_DUT_RESULT_DECIMALS */
    double scaled = v * (double)scale;
    if (scaled < 9.0e18) {
        uint64_t whole = (uint64_t)scaled; /* truncation; the remainder decides the rounding */
        double rest = scaled - (double)whole;
        if (rest > 0.5 || (rest == 0.5 && (whole & 1u) != 0u)) {
            whole++;
        }
        out_u64(whole / scale);
        out_char('.');
        uint64_t frac = whole % scale;
        for (uint64_t d = scale / 10u; d > 0u; d /= 10u) {
            out_char((char)('0' + (int)((frac / d) % 10u)));
        }
    } else if (v < 1.8e19) {
        out_u64((uint64_t)v); /* >= 9e12: an integer-valued float, exact in a uint64 */
        out_str(".000000");
    } else {
        out_str("inf"); /* beyond 1.8e19: not representable here (no int8 model output gets near) */
    }
}

/* ---- timestamps ---------------------------------------------------------------------------- */

static void timestamp(void) {
    if (s_cfg->energy_mode) {
        hk_dut_platform_timestamp_pin(0);
        uint64_t t0 = hk_platform_micros();
        while (hk_platform_micros() - t0 < 2u) { /* >= 1 us low whatever the counter's phase */
        }
        hk_dut_platform_timestamp_pin(1);
    } else {
        out_str("m-lap-us-");
        out_u64(hk_platform_micros());
        out_end();
    }
}

/* ---- helpers ------------------------------------------------------------------------------- */

/* Decimal digits only, no sign; 0 on success. */
static int parse_u32(const char *s, uint32_t *out) {
    uint64_t v = 0u;
    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        v = v * 10u + (uint64_t)(*s - '0');
        if (v > 0xFFFFFFFFu) {
            return -1;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

static int hex_nibble(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static float output_value(uint32_t i) {
    const uint8_t *o = hk_engine_output();
    const hk_tensor_info_t *t = &s_info.output;
    float scale = t->scale;
    float zp = (float)t->zero_point;
    switch (t->dtype) {
    case HK_DTYPE_INT8:
        return scale != 0.0f ? ((float)(int8_t)o[i] - zp) * scale : (float)(int8_t)o[i];
    case HK_DTYPE_UINT8:
        return scale != 0.0f ? ((float)o[i] - zp) * scale : (float)o[i];
    case HK_DTYPE_INT16: {
        int16_t q;
        memcpy(&q, o + 2u * i, sizeof q);
        return scale != 0.0f ? ((float)q - zp) * scale : (float)q;
    }
    case HK_DTYPE_FLOAT32: {
        float f;
        memcpy(&f, o + 4u * i, sizeof f);
        return f;
    }
    default:
        return 0.0f;
    }
}

static uint32_t output_count(void) {
    switch (s_info.output.dtype) {
    case HK_DTYPE_INT16:
        return s_info.output.bytes / 2u;
    case HK_DTYPE_FLOAT32:
        return s_info.output.bytes / 4u;
    case HK_DTYPE_INT8:
    case HK_DTYPE_UINT8:
        return s_info.output.bytes;
    default:
        return 0u;
    }
}

static void print_results(void) {
    out_str("m-results-[");
    uint32_t n = output_count();
    for (uint32_t i = 0u; i < n; i++) {
        if (i > 0u) {
            out_char(',');
        }
        out_fixed(output_value(i));
    }
    out_char(']');
    out_end();
}

/* ---- commands ------------------------------------------------------------------------------ */

static void cmd_help(void) {
    out_line(HK_DUT_PROFILE);
    out_line("");
    out_line("help         : Print this information");
    out_line("name         : Print the name of the device");
    out_line("profile      : Print the profile and the model id");
    out_line("timestamp    : Generate a timestamp");
    out_line("db SUBCMD    : Manipulate the input buffer");
    out_line("  load N     : Expect N bytes (N = the model's input size)");
    out_line("  db HH[HH]* : Load 8-bit hex byte(s) until N bytes");
    out_line("infer N [W=10]: Run W warm-up and N timed inferences on the loaded input");
    out_line("results      : Print the dequantized outputs of the last inference");
}

static void cmd_db(char **tok, size_t ntok) {
    if (ntok < 2u) {
        error_line("Command 'db' requires a subcommand");
        return;
    }
    if (strcmp(tok[1], "load") == 0) {
        uint32_t n;
        if (ntok != 3u || parse_u32(tok[2], &n) != 0) {
            error_line("Command 'db load' requires the # of bytes");
            return;
        }
        s_expect = 0u;
        s_loaded = 0u;
        s_input_ready = 0;
        if (n != s_info.input.bytes || n > s_cfg->input_cap) {
            error_begin();
            out_str("db load ");
            out_u64(n);
            out_str(": the model input is ");
            out_u64(s_info.input.bytes);
            out_str(" bytes");
            error_end();
            return;
        }
        s_expect = n;
        out_str("m-[Expecting ");
        out_u64(n);
        out_str(" bytes]");
        out_end();
        return;
    }
    if (ntok != 2u) {
        error_line("Command 'db' takes one hex string");
        return;
    }
    const char *hex = tok[1];
    size_t digits = strlen(hex);
    if (s_expect == 0u) {
        error_line("No load in progress: send db load N first");
        return;
    }
    if ((digits & 1u) != 0u) {
        error_line("Insufficient number of hex digits");
        return;
    }
    for (size_t i = 0u; i < digits; i++) {
        if (hex_nibble(hex[i]) < 0) {
            error_begin();
            out_str("Invalid hex digit '");
            out_char(hex[i]);
            out_str("'");
            error_end();
            return;
        }
    }
    size_t bytes = digits / 2u;
    if (bytes > s_expect - s_loaded) {
        error_begin();
        out_u64(bytes);
        out_str(" bytes sent, ");
        out_u64(s_expect - s_loaded);
        out_str(" expected: chunk ignored");
        error_end();
        return;
    }
    for (size_t i = 0u; i < bytes; i++) {
        s_cfg->input_buf[s_loaded + i] =
            (uint8_t)((hex_nibble(hex[2u * i]) << 4) | hex_nibble(hex[2u * i + 1u]));
    }
    s_loaded += bytes;
    if (s_loaded == s_expect) {
        s_input_ready = 1;
        s_expect = 0u;
        out_line("m-load-done");
    }
}

static int run_once(void) {
    uint32_t cycles;
    memcpy(hk_engine_input(), s_cfg->input_buf, s_info.input.bytes); /* TFLM reuses the input buffer */
    int32_t st = hk_engine_invoke(&cycles);
    if (st != HK_ENGINE_OK) {
        error_begin();
        out_str("Inference failed: engine status ");
        out_u64((uint64_t)(uint32_t)st);
        error_end();
        return -1;
    }
    return 0;
}

static void cmd_infer(char **tok, size_t ntok) {
    uint32_t n = 1u;
    uint32_t w = 10u;
    if (ntok > 3u) {
        error_line("Command 'infer' takes N [W]");
        return;
    }
    if (ntok >= 2u && (parse_u32(tok[1], &n) != 0 || n == 0u)) {
        error_line("Inference iterations must be >0");
        return;
    }
    if (ntok == 3u && parse_u32(tok[2], &w) != 0) {
        error_line("Inference warmup must be >=0");
        return;
    }
    if (s_init_status != HK_ENGINE_OK) {
        error_begin();
        out_str("Engine not ready: init status ");
        out_u64((uint64_t)(uint32_t)s_init_status);
        error_end();
        return;
    }
    if (!s_input_ready) {
        error_line("No input: send db load N and the data first");
        return;
    }
    out_str("m-warmup-start-");
    out_u64(w);
    out_end();
    for (uint32_t i = 0u; i < w; i++) {
        if (run_once() != 0) {
            return;
        }
    }
    out_line("m-warmup-done");
    out_str("m-infer-start-");
    out_u64(n);
    out_end();
    timestamp();
    for (uint32_t i = 0u; i < n; i++) {
        if (run_once() != 0) {
            return;
        }
    }
    timestamp();
    out_line("m-infer-done");
    s_have_results = 1;
    print_results();
}

static void execute(char *line) {
    char *tok[HK_DUT_MAX_TOKENS];
    size_t ntok = 0u;
    char *p = line;
    while (*p != '\0') {
        while (*p == ' ') {
            *p++ = '\0';
        }
        if (*p == '\0') {
            break;
        }
        if (ntok == HK_DUT_MAX_TOKENS) {
            ntok++;
            break;
        }
        tok[ntok++] = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
    }
    if (ntok == 0u) {
        ready(); /* a bare '%' (the runner's flush): just m-ready */
        return;
    }
    if (ntok > HK_DUT_MAX_TOKENS) {
        error_line("Too many arguments");
    } else if (strcmp(tok[0], "name") == 0 && ntok == 1u) {
        out_str("m-name-dut-[");
        out_str(s_cfg->name);
        out_str("]");
        out_end();
    } else if (strcmp(tok[0], "profile") == 0 && ntok == 1u) {
        out_line("m-profile-[" HK_DUT_PROFILE "]");
        out_str("m-model-[");
        out_str(s_cfg->model_id);
        out_str("]");
        out_end();
    } else if (strcmp(tok[0], "help") == 0 && ntok == 1u) {
        cmd_help();
    } else if (strcmp(tok[0], "timestamp") == 0 && ntok == 1u) {
        timestamp();
    } else if (strcmp(tok[0], "db") == 0) {
        cmd_db(tok, ntok);
    } else if (strcmp(tok[0], "infer") == 0) {
        cmd_infer(tok, ntok);
    } else if (strcmp(tok[0], "results") == 0 && ntok == 1u) {
        if (s_have_results) {
            print_results();
        } else {
            error_line("No results: run infer first");
        }
    } else if (!strcmp(tok[0], "name") || !strcmp(tok[0], "profile") || !strcmp(tok[0], "help") ||
               !strcmp(tok[0], "timestamp") || !strcmp(tok[0], "results")) {
        error_begin();
        out_str("Command '");
        out_str(tok[0]);
        out_str("' takes no arguments");
        error_end();
    } else {
        error_begin();
        out_str("Unknown command: ");
        out_str(tok[0]);
        error_end();
    }
    ready();
}

/* ---- input --------------------------------------------------------------------------------- */

void hk_dut_feed(const uint8_t *data, size_t len) {
    for (size_t i = 0u; i < len; i++) {
        char c = (char)data[i];
        if (c == '%') {
            if (s_cmd_overlong) {
                error_begin();
                out_str("Command longer than ");
                out_u64(HK_DUT_CMD_MAX);
                out_str(" characters: ignored");
                error_end();
                ready();
            } else {
                s_cmd[s_cmd_len] = '\0';
                execute(s_cmd);
            }
            s_cmd_len = 0u;
            s_cmd_overlong = 0;
        } else if (c == '\r' || c == '\n' || c == '\0') {
            /* line ends and NULs are not part of the protocol: ignored */
        } else if (s_cmd_len < HK_DUT_CMD_MAX) {
            s_cmd[s_cmd_len++] = c;
        } else {
            s_cmd_overlong = 1; /* keep discarding until the '%' */
        }
    }
}

void hk_dut_discard_partial(void) {
    s_cmd_len = 0u;
    s_cmd_overlong = 0;
}

void hk_dut_poll(void) {
    uint8_t buf[64];
    size_t n = hk_platform_read(buf, sizeof buf);
    if (n > 0u) {
        hk_dut_feed(buf, n);
    }
}

void hk_dut_log(const char *text) {
    out_str("m-log-[");
    out_str(text);
    out_char(']');
    out_end();
}

void hk_dut_init(const hk_dut_config_t *cfg) {
    s_cfg = cfg;
    s_cmd_len = 0u;
    s_cmd_overlong = 0;
    s_expect = 0u;
    s_loaded = 0u;
    s_input_ready = 0;
    s_have_results = 0;
    out_line(cfg->energy_mode ? "m-timestamp-mode-energy" : "m-timestamp-mode-performance");
    s_init_status = hk_engine_init(&s_info);
    timestamp();
    if (s_init_status != HK_ENGINE_OK) {
        error_begin();
        out_str("Engine init failed: status ");
        out_u64((uint64_t)(uint32_t)s_init_status);
        error_end();
    } else if (s_info.input.bytes > cfg->input_cap) {
        error_line("The model input does not fit the input buffer");
        s_init_status = HK_ENGINE_ERR_NOT_READY;
    }
    out_line("m-init-done");
    ready();
}
