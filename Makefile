# Klaxon — the front door. The real build is CMake; this file only strings
# the steps together. `make run` and `make test` are all the set-up there is.

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN     ?= 127.0.0.1:8080
DATA_DIR   ?= var
FUZZ_SECONDS ?= 60

.PHONY: all setup build run test test-fast test-asan check-banned bench fuzz clean

all: build

setup:
	@scripts/setup

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKX_WERROR=ON

build: setup $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

run: build
	@scripts/run "$(BUILD)" "$(LISTEN)" "$(DATA_DIR)"

check-banned:
	@scripts/check-banned

# Every test: banned functions, the suite on the normal build, then the
# suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
test: setup check-banned build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)
	$(MAKE) --no-print-directory test-asan

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKX_WERROR=ON -DKX_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS)

bench: build
	@bench/run-all "$(BUILD)"

# libFuzzer on every parser, FUZZ_SECONDS each (clang).
fuzz: setup
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKX_FUZZ=ON -DKX_SANITIZE=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	@for t in $(FUZZ_BUILD)/fuzz_*; do \
		name=$$(basename $$t); mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
		echo "== $$name ($(FUZZ_SECONDS)s)"; \
		$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=$(FUZZ_BUILD)/ \
			$(FUZZ_BUILD)/corpus/$$name tests/fuzz/corpus/$$name || exit 1; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
