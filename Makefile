# songd — the two commands a fresh Debian 12 machine needs:
#   make run    installs what is missing, builds, serves on the embedded defaults
#   make test   installs what is missing, builds, runs every test
BUILD ?= build
BUILD_ASAN ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
	-DSONGD_WERROR=ON
export CCACHE_DIR ?= $(HOME)/.cache/ccache
# Paths relative to the checkout, so two clones (CI's, a worktree) share cache entries.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

.PHONY: deps deps-test build run test test-asan bench format tidy clean

deps:
	@bash scripts/install-deps.sh

# Test-only packages (servers, browser, torch) come with `make test`, never with `make run`.
deps-test:
	@bash scripts/install-deps.sh test

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > /dev/null
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./$(BUILD)/songd serve

test: deps-test build test-asan
	bash scripts/test-setup.sh
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) --timeout 600

# The unit tests again under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	cmake -S . -B $(BUILD_ASAN) $(CMAKE_FLAGS) -DSONGD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
		-DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" > /dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS) --target songd_unit_tests songd
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		./$(BUILD_ASAN)/tests/songd_unit_tests --gtest_brief=1

bench: deps-test build
	bash bench/all.sh

format:
	clang-format -i $$(git ls-files 'src/*.cpp' 'src/*.h' 'tests/*.cpp' 'tests/*.h' 'bench/*.cpp')

tidy: build
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'src/*.cpp')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
