# Reliability and security jobs (issue #6; see SECURITY.md and
# BENCHMARKS.md). `make test` runs the sanitizer job too; the others are
# long versions of tests the suite runs at smaller sizes.
#
#   make sanitize   valgrind + ASan/UBSan job (scripts/sanitize.sh, ~15 s after the build)
#   make race       the symlink race with 1,000 rootfs preparations
#   make load       the load tests at 1,000 sequential / 100 concurrent, release build
#                   (plug in another runtime: NSBOOT_LOAD_CMD='...' make load)
#   make fuzz       10+ million coverage-guided executions of the decoder (fuzz/README.md)

.PHONY: sanitize race load fuzz

sanitize:
	./scripts/sanitize.sh

race:
	$(CARGO) build --lib
	NSBOOT_RACE_RUNS=1000 $(CARGO) test --test escape symlink_swapped -- --nocapture

load:
	$(CARGO) build --release --lib
	NSBOOT_LOAD_SEQ=1000 NSBOOT_LOAD_SCALE=200 NSBOOT_LOAD_CONC=100 \
	  $(CARGO) test --release --test load -- --nocapture --test-threads=1

fuzz:
	RUSTC_BOOTSTRAP=1 cargo fuzz build decode
	mkdir -p /tmp/fuzz-work
	RUSTC_BOOTSTRAP=1 cargo fuzz run decode /tmp/fuzz-work fuzz/corpus/decode -- \
	  -dict=fuzz/decode.dict -runs=10000000 -print_final_stats=1
