# distans: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
LOCAL := deploy/local

.PHONY: help install up down demo build test unit lint bench bench-quick fuzz chaos clean

help:
	@echo "make demo   install what is missing, start broker + ClickHouse + services, run a year of lines, print the report"
	@echo "make test   install what is missing, unit tests, then end-to-end tests on a real broker and ClickHouse"
	@echo "make down   stop everything the demo started"
	@echo "make lint   no SQL outside crates/store, rustfmt --check and clippy"
	@echo "make bench  each stage's rate beside the broker's raw consume rate and a plain Python pipeline, latency, CPU, memory (LINES=, REPETITIONS=)"
	@echo "make bench-quick  in-process figures (ingester logic, sink decode + RowBinary) beside a floor, before and after the codec (< 1 min)"
	@echo "make fuzz   the fuzz targets, FUZZ_SECONDS (600) each, one after another (cargo-fuzz)"
	@echo "make chaos  a year of lines while services are SIGKILLed and the broker and ClickHouse restarted (~10 min)"

install:
	$(LOCAL)/install.sh

up: install
	$(LOCAL)/up.sh

down:
	$(LOCAL)/down.sh

demo:
	$(LOCAL)/demo.sh

build:
	cargo build --workspace --bins

# The end-to-end tests start their own broker and ClickHouse on free ports
# and run the service binaries built here.
test: install build
	@if command -v cargo-nextest >/dev/null; then \
		cargo nextest run --workspace --no-fail-fast; \
	else \
		cargo test --workspace --no-fail-fast; \
	fi

lint:
	deploy/lint/sql-only-in-store.sh
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

# Figures in release mode: the services are benchmarked as they would run.
# distans-bench: every stage through tansu and ClickHouse side by side, as
# shares of the broker's raw consume rate, three repetitions (~5 min on 2
# cores; LINES= lines per stage, default 30 000, see
# tests/src/bin/bench/main.rs; REPETITIONS=), JSON under <target dir>/bench/. Then the rule engine and
# the aggregate refresh in process.
BENCH_BIN = $${CARGO_TARGET_DIR:-target}/release
bench: install
	cargo build --release --workspace --bins
	$(BENCH_BIN)/distans-bench $(LINES) $(if $(REPETITIONS),--repetitions $(REPETITIONS))
	$(BENCH_BIN)/distans-bench-rules
	$(BENCH_BIN)/distans-bench-refresh

# The in-process figures of issue 15, under a minute and without a broker or
# ClickHouse: lines per CPU-second of the ingester's logic and of the sink's
# decode + RowBinary insert, through the apache-avro Value path (before) and
# the codec (after), each beside a floor (decode + HMAC + encode) measured
# in the same run. LINES: how many generated lines (default 20 000).
bench-quick:
	cargo build --release -p distans-e2e --bin distans-bench-quick
	$${CARGO_TARGET_DIR:-target}/release/distans-bench-quick $(LINES)

# Fuzz targets for what distans reads from outside (fuzz/run.sh): the wire
# decoder and the ingester's path, invoice files (JSON lines, CSV), the
# listing register. Long, so not part of `make test`.
fuzz:
	fuzz/run.sh

# The long chaos run (issue 12), kept out of `make test`: a whole generated
# year while every service is SIGKILLed at random moments and tansu and
# ClickHouse are restarted; prints the figures and fails on any difference.
# The short variant is the end-to-end test tests/tests/chaos.rs.
chaos: install build
	cargo run --quiet -p distans-e2e --bin distans-chaos

clean: down
	rm -rf .data .run
