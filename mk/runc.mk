# runc >= 1.2 (third-party snapshots 1.3.6 and 1.5.1) with libnsboot:
# runc's bats integration suite, with runc's own C and with libnsboot, root
# and rootless (tests/go/runc-bats.sh). `make test` runs RUNC_BATS_SUBSET;
# `make runc-suite` runs every file (wall times: README, "runc >= 1.2").
RUNC_VERSIONS ?= 1.3.6 1.5.1
RUNC_BATS_SUBSET ?= run.bats exec.bats create.bats start.bats start_detached.bats \
	start_hello.bats kill.bats delete.bats userns.bats timens.bats \
	cpu_affinity.bats mounts.bats dev.bats cgroups.bats
RUNC_BATS_LIBDIR ?= $(TARGET_DIR)
# rootless: as nobody, no subuids; rootless-idmap: a user with subuid and
# subgid ranges (runc-bats.sh creates it), ids mapped through newuidmap.
RUNC_BATS_MODES ?= root rootless rootless-idmap

.PHONY: runc-bats-subset runc-suite

runc-bats-subset:
	@rc=0; for v in $(RUNC_VERSIONS); do for m in $(RUNC_BATS_MODES); do \
		./tests/go/runc-bats.sh $$v $$m $(RUNC_BATS_LIBDIR) $(RUNC_BATS_SUBSET) || rc=1; \
	done; done; exit $$rc

runc-suite: deps
	$(CARGO) build $(CARGO_FLAGS) --lib
	@rc=0; for v in $(RUNC_VERSIONS); do for m in $(RUNC_BATS_MODES); do \
		NSBOOT_BATS_OUT=$${NSBOOT_BATS_OUT:-target/runc-suite} ./tests/go/runc-bats.sh $$v $$m $(RUNC_BATS_LIBDIR) || rc=1; \
	done; done; exit $$rc
