# neuralSPOT module of the hkdeploy firmware (built by neuralSPOT's make with AUTODEPLOY=1
# ADPATH=<this folder's parent> EXAMPLE=neuralspot; see Makefile next to this file).
# Inputs from the make command line: HK_EXPORT_DIR (model headers), HK_BOARD_NAME, HK_BUILD_ID,
# HK_CPU_HZ, HK_LINK (usb | uart), HK_ARENA_SIZE (bytes; default the export's HK_MODEL_ARENA_SIZE);
# HK_APP=mlperf builds the MLPerf Tiny DUT instead (src/hk_dut_main.cc + firmware/dut, no link core)
# with HK_DUT_NAME, HK_DUT_MODEL_ID, HK_DUT_ENERGY, HK_DUT_BAUD, HK_DUT_TS_PIN.
local_app_name := hkdeploy_fw
hk_fw_root := $(subdirectory)/../..
local_bin := $(BINDIR)/$(subdirectory)
ifeq ($(HK_APP),mlperf)
local_src := $(subdirectory)/src/hk_dut_main.cc $(subdirectory)/src/hk_cycles.cc $(subdirectory)/src/hk_ns_common.cc
local_src += $(wildcard $(hk_fw_root)/dut/*.c)
mains     += $(local_bin)/src/hk_dut_main.o
DEFINES += HK_DUT_NAME=\"$(HK_DUT_NAME)\"
DEFINES += HK_DUT_MODEL_ID=\"$(HK_DUT_MODEL_ID)\"
DEFINES += HK_DUT_ENERGY=$(HK_DUT_ENERGY)
DEFINES += HK_DUT_BAUD=$(HK_DUT_BAUD)u
ifneq ($(HK_DUT_TS_PIN),)
DEFINES += HK_DUT_TS_PIN=$(HK_DUT_TS_PIN)
endif
else
local_src := $(subdirectory)/src/hk_main.cc $(subdirectory)/src/hk_cycles.cc $(subdirectory)/src/hk_ns_common.cc
# the fault handler: records the fault and resets; keeps the core's engine-init marker (hk_platform.h)
local_src += $(subdirectory)/src/hk_ns_fault.c
local_src += $(wildcard $(hk_fw_root)/core/*.c)
mains     += $(local_bin)/src/hk_main.o
endif
local_src += $(hk_fw_root)/engine/hk_engine_tflm.cc

bindirs   += $(local_bin)
examples  += $(local_bin)/$(local_app_name).axf
examples  += $(local_bin)/$(local_app_name).bin

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
