# neuralSPOT module of the hkdeploy firmware (built by neuralSPOT's make with AUTODEPLOY=1
# ADPATH=<this folder's parent> EXAMPLE=neuralspot; see Makefile next to this file).
# Inputs from the make command line: HK_EXPORT_DIR (model headers), HK_BOARD_NAME, HK_BUILD_ID,
# HK_CPU_HZ, HK_LINK (usb | uart), HK_ARENA_SIZE (bytes; default the export's HK_MODEL_ARENA_SIZE).
local_app_name := hkdeploy_fw
hk_fw_root := $(subdirectory)/../..
local_src := $(wildcard $(subdirectory)/src/*.cc)
local_src += $(wildcard $(hk_fw_root)/core/*.c)
local_src += $(hk_fw_root)/engine/hk_engine_tflm.cc
local_bin := $(BINDIR)/$(subdirectory)

bindirs   += $(local_bin)
examples  += $(local_bin)/$(local_app_name).axf
examples  += $(local_bin)/$(local_app_name).bin
mains     += $(local_bin)/src/hk_main.o

includes_api += $(HK_EXPORT_DIR)
# the engine finds this platform's hk_engine_platform.h (arena placement) here
includes_api += $(subdirectory)/src
DEFINES += HK_BOARD_NAME=\"$(HK_BOARD_NAME)\"
DEFINES += HK_BUILD_ID=\"$(HK_BUILD_ID)\"
ifneq ($(HK_CPU_HZ),)
DEFINES += HK_CPU_HZ=$(HK_CPU_HZ)u
endif
ifneq ($(HK_ARENA_SIZE),)
DEFINES += HK_ARENA_SIZE=$(HK_ARENA_SIZE)u
endif
# Largest arena kept in the TCM (.bss) before it moves to the shared SRAM (.sram_bss); the rest of the
# TCM holds the stack, the link buffers and the SDK's data (src/hk_engine_platform.h).
ifeq ($(ARCH),apollo4)
DEFINES += HK_ARENA_TCM_MAX=262144u
else ifeq ($(ARCH),apollo5)
DEFINES += HK_ARENA_TCM_MAX=393216u
endif
ifeq ($(HK_LINK),uart)
DEFINES += HK_LINK_UART=1
# a bare UART has no flow control and ns-uart's ring buffer is not sized for several frames: the
# device grants one credit (the host waits for each answer); USB CDC flow-controls, so it pipelines
DEFINES += HK_RX_CREDITS=1u
else
DEFINES += HK_LINK_UART=0
endif

$(eval $(call make-axf, $(local_bin)/$(local_app_name), $(local_src)))
