# `make firmware`: build the hkdeploy firmware for a neuralSPOT board from a checkout.
#   make firmware NEURALSPOT_ROOT=/path/to/neuralSPOT PLATFORM=apollo3p_evb [AS_VERSION=R3.1.1] \
#        [EXPORT_DIR=job/demo/export] [FW_BUILD_DIR=build/firmware/<PLATFORM>] [HK_LINK=usb|uart] \
#        [HK_CPU_HZ=96000000] [HK_BOARD_NAME=<PLATFORM>] [HK_BUILD_ID=git-<sha>] [HK_ARENA_SIZE=<bytes>]
#        [TOOLCHAIN_DIR=...]
# The same as `hkdeploy build --board <board>` minus the manifest; not part of `make test`
# (CI has no SDK). NEURALSPOT_ROOT may also come from the environment. See docs/firmware.md.
EXPORT_DIR ?= job/demo/export
FW_BUILD_DIR ?= build/firmware/$(PLATFORM)
HK_FW_BUILD_ID = git-$(shell git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

.PHONY: firmware
firmware:
	$(MAKE) -f firmware/platform/neuralspot/Makefile NEURALSPOT_ROOT=$(NEURALSPOT_ROOT) PLATFORM=$(PLATFORM) \
	  $(if $(AS_VERSION),AS_VERSION=$(AS_VERSION)) EXPORT_DIR=$(abspath $(EXPORT_DIR)) \
	  FW_BUILD_DIR=$(abspath $(FW_BUILD_DIR)) $(if $(HK_LINK),HK_LINK=$(HK_LINK)) \
	  $(if $(HK_CPU_HZ),HK_CPU_HZ=$(HK_CPU_HZ)) HK_BUILD_ID=$(or $(HK_BUILD_ID),$(HK_FW_BUILD_ID)) \
	  $(if $(HK_BOARD_NAME),HK_BOARD_NAME=$(HK_BOARD_NAME)) $(if $(HK_ARENA_SIZE),HK_ARENA_SIZE=$(HK_ARENA_SIZE)) \
	  $(if $(TOOLCHAIN_DIR),TOOLCHAIN_DIR=$(TOOLCHAIN_DIR))
