# nsboot: build, test, install. The README's two commands:
#   make run    build nsrun and start a shell in a container of the host's /
#   make test   install test prerequisites (Debian) and run every test
PROFILE ?= debug
CARGO ?= cargo
CARGO_FLAGS := $(if $(filter release,$(PROFILE)),--release,)
TARGET_DIR := target/$(PROFILE)

.PHONY: all build run test test-rust test-go header-check deps clean-tests

all: build

build:
	$(CARGO) build $(CARGO_FLAGS) --lib --examples

deps:
	./scripts/install-deps.sh
	./scripts/install-go.sh >/dev/null

run:
	$(CARGO) build --release --example nsrun
	target/release/examples/nsrun run -it sh

test: deps
	$(CARGO) build $(CARGO_FLAGS) --lib --examples
	$(CARGO) test $(CARGO_FLAGS) --no-fail-fast
	./tests/go/runc-nsenter-test.sh $(TARGET_DIR)
	./tests/go/runc-dropin.sh $(TARGET_DIR)
	./tests/go/runc-modern.sh 1.3.6 $(TARGET_DIR)
	./tests/go/runc-modern.sh 1.5.1 $(TARGET_DIR)
	$(MAKE) --no-print-directory runc-bats-subset
	# The Rust library still builds without its rootfs feature (the C
	# artifacts never carry the OCI code: see capi/ and rootfs-plugin/).
	$(CARGO) build $(CARGO_FLAGS) -p nsboot --lib --no-default-features --target-dir target/lite
	./scripts/sanitize.sh
	@echo "make test: all suites passed"

header-check:
	./cbind/gen-header.sh --check

-include mk/*.mk
