/*
 * hk_ns_platform.h - what the neuralSPOT platform shares between its own files (not the core's API).
 */
#ifndef HK_NS_PLATFORM_H
#define HK_NS_PLATFORM_H

#ifdef __cplusplus
extern "C" {
#endif

/* Start the DWT (M4) / PMU (M55) cycle counter; call after the debug domain is powered. */
void hk_ns_cycles_init(void);

#ifdef __cplusplus
}
#endif

#endif /* HK_NS_PLATFORM_H */
