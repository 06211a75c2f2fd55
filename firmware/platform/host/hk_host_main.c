/*
 * hk_host_main.c - the host port ("virtual EVB"): the firmware's link core on Linux.
 *
 * Its UART is a pseudo-terminal: the first line on stdout is "PTY <path>", which the host opens with
 * pyserial exactly like a board's serial port. Options:
 *   --board NAME        board name reported in HELLO (e.g. sim:apollo4p_evb)
 *   --mram-bytes N      emulated application MRAM: a larger model is refused (HELLO alloc_status)
 *   --sram-bytes N      emulated SRAM: a larger arena is refused
 *   --baud N            pace both directions as an 8N1 UART at N baud would (0 = unpaced)
 *   --build-id ID       build id reported in HELLO
 * It exits when the host closes the pty after having opened it, on SIGTERM, or when the process
 * that started it dies (PR_SET_PDEATHSIG): a crashed host never leaves a virtual EVB behind.
 * SIGUSR1 is its reset button: engine and link start again as after power-on (the host must HELLO).
 *
 * Built with -DHK_APP_MLPERF=1 (plus the firmware/dut sources instead of the link core) it is the MLPerf Tiny
 * DUT: the runner's text protocol on the pty (firmware/dut/hk_dut.h), named HK_DUT_NAME, reporting
 * HK_DUT_MODEL_ID, timestamps as m-lap-us lines (HK_DUT_ENERGY=1: "GPIO" edges logged on stderr).
 * The DUT survives the host closing and reopening the pty (the runner does that): a close only
 * drops a partly received command and the output written while nobody listens; SIGUSR1 reboots it
 * (banner again).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "../../core/hk_platform.h"
#include "hk_host.h"
#ifndef HK_APP_MLPERF
#define HK_APP_MLPERF 0
#endif
#if HK_APP_MLPERF
#include "../../dut/hk_dut.h"
#include "model_config.h"
#ifndef HK_DUT_NAME
#define HK_DUT_NAME "hkdeploy-custom"
#endif
#ifndef HK_DUT_MODEL_ID
#define HK_DUT_MODEL_ID "custom"
#endif
#ifndef HK_DUT_ENERGY
#define HK_DUT_ENERGY 0
#endif
static uint8_t s_dut_input[HK_MODEL_INPUT_BYTES];
static const hk_dut_config_t s_dut_cfg = {HK_DUT_NAME, HK_DUT_MODEL_ID, HK_DUT_ENERGY, s_dut_input,
                                          sizeof s_dut_input};
static int s_peer_open; /* the pty's slave side is open (no POLLHUP) */
#else
#include "../../core/hk_core.h"
#endif

static int s_master = -1;
static unsigned long s_baud;
static const char *s_board = "sim";
static const char *s_build_id = "host";
static volatile sig_atomic_t s_stop;
static volatile sig_atomic_t s_reset_button;
static int s_seen_peer;
hk_host_limits_t g_hk_host_limits;

static void on_signal(int sig) {
    if (sig == SIGUSR1) {
        s_reset_button = 1;
    } else {
        s_stop = 1;
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Line-rate emulation: each direction is a wire that is busy 10 bits per byte (8N1). A byte can only
 * leave (or be delivered) once its wire is free; we sleep until then. The OS wakes us late, so the
 * next bytes may use the last sleep's overshoot (bytes queued back to back keep the wire's
 * schedule), but time the wire sat idle is never a credit: the emulated line is never faster than
 * the real one. */
static double s_line_free[2];
static double s_late[2];

static void pace(int dir, size_t bytes) {
    if (s_baud == 0u || bytes == 0u) {
        return;
    }
    double now = now_s();
    double earliest = now - s_late[dir];
    if (s_line_free[dir] < earliest) {
        s_line_free[dir] = earliest;
    }
    s_line_free[dir] += (double)bytes * 10.0 / (double)s_baud;
    double wait = s_line_free[dir] - now;
    s_late[dir] = 0.0;
    if (wait > 0.0002) {
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !s_stop) {
        }
        double late = now_s() - s_line_free[dir];
        s_late[dir] = late < 0.0 ? 0.0 : (late > 0.002 ? 0.002 : late);
    }
}

size_t hk_platform_read(uint8_t *buf, size_t len) {
    struct pollfd pfd = {s_master, POLLIN, 0};
    if (poll(&pfd, 1, 20) <= 0) {
        return 0u;
    }
    if (pfd.revents & POLLHUP) {
#if HK_APP_MLPERF
        if (s_peer_open) {
            s_peer_open = 0;
            hk_dut_discard_partial(); /* closed mid-command: the next open starts clean */
        }
#else
        if (s_seen_peer) {
            s_stop = 1; /* the host closed the port */
        }
#endif
        struct timespec ts = {0, 20000000L};
        nanosleep(&ts, NULL);
        return 0u;
    }
    ssize_t n = read(s_master, buf, len);
    if (n <= 0) {
        return 0u;
    }
    s_seen_peer = 1;
#if HK_APP_MLPERF
    s_peer_open = 1;
#endif
    pace(0, (size_t)n); /* host -> device wire */
    return (size_t)n;
}

size_t hk_platform_write(const uint8_t *buf, size_t len) {
    size_t done = 0u;
    /* paced: bytes leave in pieces of about 0.25 ms of line time, each once the wire would have
     * carried its last byte (never earlier than a real UART, far fewer wake-ups than byte by byte) */
    size_t piece = s_baud ? (s_baud / 40000u > 0u ? (size_t)(s_baud / 40000u) : 1u) : len;
    size_t paced = 0u; /* bytes whose line time has passed */
    while (done < len && !s_stop) {
        if (s_baud && done == paced) {
            size_t next = len - done < piece ? len - done : piece;
            pace(1, next);
            paced += next;
        }
        ssize_t n = write(s_master, buf + done, (s_baud ? paced : len) - done);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct pollfd pfd = {s_master, POLLOUT, 0};
                (void)poll(&pfd, 1, 100);
#if HK_APP_MLPERF
                if (pfd.revents & POLLHUP) {
                    break; /* nobody has the port open: a UART's bytes would be lost too */
                }
#endif
                continue;
            }
            break;
        }
        done += (size_t)n;
    }
    return done;
}

uint64_t hk_platform_micros(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *hk_platform_board(void) { return s_board; }

const char *hk_platform_build_id(void) { return s_build_id; }

void hk_platform_reset(void) {}

#ifdef HK_HOST_NO_COUNTER
/* TEST DOUBLE build (tests only, never `hkdeploy build`): no counter, like a board whose debug
 * domain is off: HELLO says counter_kind 0 and every count is 0. */
uint32_t hk_platform_cycles(void) { return 0u; }

uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_NONE; }
#else
/* The virtual EVB's counter: host nanoseconds (CLOCK_MONOTONIC), labelled as host time in HELLO. */
uint32_t hk_platform_cycles(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

uint8_t hk_platform_counter_kind(void) { return HK_COUNTER_HOST_NS; }
#endif

uint32_t hk_platform_counter_hz(void) { return 1000000000u; }

#if HK_APP_MLPERF
void hk_dut_platform_timestamp_pin(int level) {
    /* the virtual EVB has no power monitor: the edge is logged with its time */
    fprintf(stderr, "hk_host: timestamp pin %s at %llu us\n", level ? "high" : "low",
            (unsigned long long)hk_platform_micros());
}
#endif

static unsigned long arg_ulong(const char *text, const char *name) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 0);
    if (errno || !end || *end) {
        fprintf(stderr, "hk_host: %s needs a number, got '%s'\n", name, text);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "hk_host: option %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--board")) {
            s_board = v;
        } else if (!strcmp(a, "--build-id")) {
            s_build_id = v;
        } else if (!strcmp(a, "--mram-bytes")) {
            g_hk_host_limits.mram_bytes = arg_ulong(v, a);
        } else if (!strcmp(a, "--sram-bytes")) {
            g_hk_host_limits.sram_bytes = arg_ulong(v, a);
        } else if (!strcmp(a, "--baud")) {
            s_baud = arg_ulong(v, a);
        } else {
            fprintf(stderr, "hk_host: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    pid_t parent = getppid();
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGUSR1, on_signal);
    signal(SIGPIPE, SIG_IGN);
    /* die with the parent; the parent may have died before prctl took effect: check once more */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) {
        return 4;
    }

    s_master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (s_master < 0 || grantpt(s_master) != 0 || unlockpt(s_master) != 0) {
        perror("hk_host: cannot create a pseudo-terminal");
        return 3;
    }
    struct termios tio;
    if (tcgetattr(s_master, &tio) == 0) {
        cfmakeraw(&tio);
        tcsetattr(s_master, TCSANOW, &tio);
    }
    printf("PTY %s\n", ptsname(s_master));
    fflush(stdout);

#if HK_APP_MLPERF
    hk_dut_init(&s_dut_cfg);
    while (!s_stop) {
        if (s_reset_button) {
            s_reset_button = 0;
            hk_dut_init(&s_dut_cfg); /* power-on again: banner, engine re-initialised */
        }
        hk_dut_poll();
    }
#else
    hk_core_init();
    while (!s_stop) {
        if (s_reset_button) {
            s_reset_button = 0;
            hk_core_reset();
        }
        /* hk_core_poll() reads 64 bytes at a time (sized for an MCU's stack, as a board receives);
         * paced, reads of up to 4 KiB (several pipelined frames) mean fewer pacing sleeps, and so less
         * oversleep lost on a loaded machine, for the same line time (a byte is still handled only
         * once the emulated wire has delivered it) */
        uint8_t buf[4096];
        size_t n = hk_platform_read(buf, s_baud ? sizeof buf : 64u);
        if (n > 0u) {
            hk_core_feed(buf, n);
        }
    }
#endif
    hk_host_engine_shutdown();
    close(s_master);
    return 0;
}
