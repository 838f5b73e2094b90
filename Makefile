# Runnel — thin wrapper over CMake presets. See README.md.
#   make        build build/runnel (release)
#   make run    build and start a single-node broker on 127.0.0.1:9092, data in ./data
#   make test   build with sanitizers and run every test; last line "N passed, N failed"
#   make soak   the seeded cluster fault schedule, many rounds and seeds (SOAK_MINUTES, default 10)
.PHONY: all build dev fuzz run test unit integration fuzz-run soak bench clean deps deps-test

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release
	@ln -sf release/runnel build/runnel

dev: deps
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev

fuzz-build: deps-test
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz

run: build
	@mkdir -p data
	./build/runnel broker --override log.dirs=./data

test: deps-test
	@cmake --preset dev >/dev/null
	@cmake --build --preset dev
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz
	@cmake --preset release >/dev/null
	@cmake --build --preset release
	@ln -sf release/runnel build/runnel
	@tests/run.sh

# Cluster fault soak: tests/soak.sh (SOAK_MINUTES, SOAK_ROUNDS, SOAK_SEEDS).
soak: dev
	@tests/soak.sh

# Longer fuzzing: FUZZ_SECONDS per target (default 300).
fuzz: fuzz-build
	@tests/fuzz/run.sh $${FUZZ_SECONDS:-300}

clean:
	rm -rf build
