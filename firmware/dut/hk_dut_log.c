/*
 * hk_dut_log.c - the link core's log hook for DUT builds: engines call hk_core_log() for diagnostics;
 * in a DUT image (no binary link) they become "m-log-[...]" lines, which the runner ignores.
 */
#include "../core/hk_core.h"
#include "hk_dut.h"

void hk_core_log(const char *text) { hk_dut_log(text); }
