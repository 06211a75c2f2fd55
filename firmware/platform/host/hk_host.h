/* hk_host.h - what the host port's main and engine share. */
#ifndef HK_HOST_H
#define HK_HOST_H

#include <stdint.h>

typedef struct {
    unsigned long mram_bytes; /* 0 = no limit */
    unsigned long sram_bytes;
} hk_host_limits_t;

extern hk_host_limits_t g_hk_host_limits;

void hk_host_engine_shutdown(void);

#endif /* HK_HOST_H */
