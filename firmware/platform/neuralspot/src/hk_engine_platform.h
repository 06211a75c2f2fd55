/*
 * hk_engine_platform.h - the neuralSPOT platform's placement of the TFLM tensor arena, included by
 * engine/hk_engine_tflm.cc (found on this platform's include path; a platform without this header
 * gets plain .bss). Defines HK_ARENA_ATTR from HK_ARENA_SIZE, which the engine sets first.
 *
 * neuralSPOT's Apollo4/Apollo5 linker scripts put .bss in the TCM (384 KB / 496 KB) and .sram_bss
 * (NOLOAD) in the shared SRAM (1 MB / 3 MB). The arena stays in the faster TCM while it is at most
 * HK_ARENA_TCM_MAX (module.mk sets it per part), else it goes to .sram_bss; -DHK_ARENA_SRAM=0|1
 * forces either. Apollo3 has one SRAM region: no HK_ARENA_TCM_MAX, plain .bss.
 */
#ifndef HK_ENGINE_PLATFORM_H
#define HK_ENGINE_PLATFORM_H

#ifndef HK_ARENA_SIZE
#error "include hk_engine_platform.h after HK_ARENA_SIZE is defined"
#endif

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

#endif /* HK_ENGINE_PLATFORM_H */
