# nsboot: build, test, install. The README's two commands:
#   make run    build nsrun and start a shell in a container of the host's /
#   make test   install test prerequisites (Debian) and run every test
PROFILE ?= debug
CARGO ?= cargo
CARGO_FLAGS := $(if $(filter release,$(PROFILE)),--release,)
TARGET_DIR := target/$(PROFILE)
# Where the tests log their SKIP lines (tests/common/mod.rs `skip`): cargo
# captures a passing test's output, so `make test` prints them at the end.
export NSBOOT_TEST_SKIP_DIR := $(CURDIR)/target/skips

.PHONY: all build build-deps run test test-suites test-rust test-go header-check deps clean-tests

all: build

build: build-deps
	$(CARGO) build $(CARGO_FLAGS) --lib --examples

deps:
	./scripts/install-deps.sh
	./scripts/install-go.sh >/dev/null

# libseccomp-dev (nsboot-oci's seccomp filters); a no-op when installed.
build-deps:
	./scripts/install-deps.sh --build

run: build-deps
	$(CARGO) build --release --example nsrun
	target/release/examples/nsrun run --rm -it sh

# The suites, then the skipped tests and their count (also when a suite
# failed: the exit status is the suites').
test: deps
	@rm -rf "$(NSBOOT_TEST_SKIP_DIR)"
	@$(MAKE) --no-print-directory test-suites; st=$$?; ./scripts/report-skips.sh "$(NSBOOT_TEST_SKIP_DIR)"; \
	  if [ $$st -eq 0 ]; then echo "make test: all suites passed"; fi; exit $$st

test-suites:
	$(CARGO) build $(CARGO_FLAGS) --lib --examples
	$(CARGO) test $(CARGO_FLAGS) --no-fail-fast
	./tests/go/runc-nsenter-test.sh $(TARGET_DIR)
	./tests/go/runc-dropin.sh $(TARGET_DIR)
	./tests/go/runc-modern.sh 1.3.6 $(TARGET_DIR)
	./tests/go/runc-modern.sh 1.5.1 $(TARGET_DIR)
	$(MAKE) --no-print-directory runc-bats-subset
	# The bootstrap core (package nsboot, built above) carries no OCI code:
	# oci-spec is only in crates/nsboot-oci's tree, which libnsboot.so never
	# links (the C surfaces load it from the rootfs plugin).
	! $(CARGO) tree -p nsboot -e normal --prefix none | grep -q '^oci-spec '
	$(CARGO) tree -p nsboot-oci -e normal --prefix none | grep -q '^oci-spec '
	./scripts/sanitize.sh

header-check:
	./cbind/gen-header.sh --check

-include mk/*.mk
