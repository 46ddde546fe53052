# Entry points for people and CI. `make run` and `make test` are the two a
# new user needs; `make check` is what CI runs.

TARGET      := x86_64-unknown-linux-gnu
RELEASE_BIN := target/$(TARGET)/release/claude-cli-api
# crt-static links glibc into the binary. The flag must reach only the
# target crates, not build scripts and proc-macros (those are loaded by
# rustc and cannot be static), which is why the target is named
# explicitly: with --target, RUSTFLAGS skip host artifacts.
STATIC_FLAGS := -C target-feature=+crt-static

.PHONY: all build run test lint check e2e soak bench coverage fmt tools clean

all: build

## build: stripped, statically linked release binary
build:
	RUSTFLAGS="$(STATIC_FLAGS)" cargo build --release --locked --target $(TARGET)
	@ls -l $(RELEASE_BIN)

## run: build, then start the server with its defaults (127.0.0.1:3456)
run: build
	scripts/run.sh

## test: every unit and integration test
test: tools
	cargo test --locked

## lint: formatting, clippy with warnings as errors, no shell command lines
lint: tools
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	scripts/check-no-shell.sh
	scripts/vendor-tiny-http.sh check

## check: lint and test (what CI runs)
check: lint test

## e2e: the real claude CLI and the official OpenAI SDKs against the
## release binary (installs them under .cache/e2e on first use)
e2e:
	scripts/e2e.sh

## soak: a bounded soak (SOAK_SECONDS, 120 by default) of mixed clients on the
## real claude CLI against the release binary, then a SIGTERM; prints its
## figures and fails on any violation (not part of `make test`)
soak:
	bash scripts/e2e/setup.sh
	RUSTFLAGS="$(STATIC_FLAGS)" cargo build --release --locked --target $(TARGET)
	.cache/e2e/venv/bin/python scripts/soak.py

## coverage: line coverage of `make test` (cargo-tarpaulin, ptrace engine:
## llvm-tools cannot be had here); installs tarpaulin when missing. The
## tests that drive the built binary as a child process are skipped: under
## ptrace they stall, and what they reach is covered in-process anyway.
coverage:
	@command -v cargo-tarpaulin >/dev/null 2>&1 || cargo install cargo-tarpaulin --locked
	cargo tarpaulin --locked --engine ptrace --skip-clean --target-dir target/tarpaulin \
		--exclude-files 'vendor/*' --exclude-files 'tests/*' --exclude-files 'examples/*' \
		--timeout 300 --out Stdout -- \
		--skip bad_settings_stop_the_binary --skip access_log_has_one_json_line \
		--skip sigterm_drains_in_flight --skip drain_stops_children --skip second_signal_exits \
		--skip a_whole_lifecycle_logs

## bench: load and latency figures against nginx and a fake CLI, and warm
## sessions with the real CLI (not a test; BENCH_ONLY=warm for that alone)
bench:
	scripts/bench.sh

fmt: tools
	cargo fmt --all

## tools: the rustfmt and clippy components, added only when missing
tools:
	@command -v cargo >/dev/null 2>&1 || { \
		echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
	@cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
	@cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

clean:
	cargo clean
