# C checks of the firmware link core, part of `make test` (target `ctest`):
# - the C unit tests (tests/c/test_core.c with the fake engine and a capturing platform, both test
#   doubles), built with gcc + ASan/UBSan and run;
# - warning-free compilation of every core file for the host, and cross-compilation for Cortex-M4F
#   (Apollo3/4) and Cortex-M55 (Apollo5) with -Werror (skipped with a message when arm-none-eabi-gcc
#   is missing, an error under CI).
# The protocol tests over a pipe and the C <-> Python codec test are in tests/link (pytest).
# `make fuzz` runs the libFuzzer harness of the decoder (FUZZ_SECONDS, default 60); not part of `make test`.
CORE_SRC := $(sort $(wildcard firmware/core/*.c))
# The MLPerf Tiny DUT front end (firmware/dut): unit-tested with its own test doubles, compiled with
# the same flags for the host and both Cortex-M targets.
DUT_SRC := $(sort $(wildcard firmware/dut/*.c))
# The neuralSPOT platform's fault handler (plain C on the Cortex-M system registers, no SDK header):
# cross-compiled with the same flags, so CI checks it without the SDK.
NS_FAULT_SRC := firmware/platform/neuralspot/src/hk_ns_fault.c
CORE_CFLAGS := -std=c11 -Wall -Wextra -Werror -Wshadow -Wconversion -Os
CTEST_SAN := -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all
ARM_GCC ?= arm-none-eabi-gcc
FUZZ_SECONDS ?= 60

.PHONY: ctest fuzz
EXTRA_TESTS += ctest

ctest:
	@mkdir -p build/ctest
	gcc -std=c11 -Wall -Wextra -Werror $(CTEST_SAN) $(CORE_SRC) tests/c/fake_engine.c tests/c/test_core.c \
	  -o build/ctest/test_core
	build/ctest/test_core
	gcc -std=c11 -Wall -Wextra -Werror $(CTEST_SAN) firmware/dut/hk_dut.c tests/c/test_dut.c -lm -o build/ctest/test_dut
	build/ctest/test_dut
	@for f in $(CORE_SRC) $(DUT_SRC); do gcc $(CORE_CFLAGS) -c $$f -o build/ctest/host_$$(basename $$f .c).o || exit 1; done
	@if command -v $(ARM_GCC) >/dev/null 2>&1; then \
	  for f in $(CORE_SRC) $(DUT_SRC) $(NS_FAULT_SRC); do \
	    $(ARM_GCC) $(CORE_CFLAGS) -mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -c $$f -o build/ctest/m4_$$(basename $$f .c).o || exit 1; \
	    $(ARM_GCC) $(CORE_CFLAGS) -mcpu=cortex-m55 -mthumb -mfloat-abi=hard -c $$f -o build/ctest/m55_$$(basename $$f .c).o || exit 1; \
	  done; \
	  echo "ctest: link core and DUT front end compile warning-free for host, Cortex-M4F and Cortex-M55 (+ the neuralSPOT fault handler for both Cortex-M)"; \
	  $(ARM_GCC:gcc=size) $(patsubst firmware/core/%.c,build/ctest/m4_%.o,$(CORE_SRC)) \
	    $(patsubst firmware/dut/%.c,build/ctest/m4_%.o,$(DUT_SRC)); \
	elif [ -n "$$CI" ]; then echo "ctest: $(ARM_GCC) missing in CI (.ci/run installs gcc-arm-none-eabi)"; exit 1; \
	else echo "ctest: $(ARM_GCC) not installed: cross-compilation skipped (apt-get install gcc-arm-none-eabi)"; fi

fuzz: setup
	@mkdir -p build/fuzz tests/fuzz/corpus
	@clang -g -O1 -fsanitize=fuzzer,address,undefined -D_POSIX_C_SOURCE=200809L $(CORE_SRC) tests/c/fake_engine.c \
	  tests/fuzz/fuzz_core.c -o build/fuzz/fuzz_core || { echo "fuzz: clang could not build the libFuzzer" \
	  "harness. Hint: install clang and its sanitizer runtimes (Debian/Ubuntu: apt-get install clang libclang-rt-dev)" >&2; exit 1; }
	$(BIN)/python tests/fuzz/make_seeds.py tests/fuzz/corpus
	build/fuzz/fuzz_core -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 tests/fuzz/corpus
