# `make install PREFIX=... [DESTDIR=...] [PROFILE=release|debug] [NSBOOT_NO_BUILD=1]`
# (PROFILE: release unless given)
#
# Installs
#   $(LIBDIR)/libnsboot.so.$(VERSION)        soname libnsboot.so.$(SOMAJOR)
#   $(LIBDIR)/libnsboot.so.$(SOMAJOR) -> libnsboot.so.$(VERSION)
#   $(LIBDIR)/libnsboot.so            -> libnsboot.so.$(SOMAJOR)
#   $(LIBDIR)/libnsboot.a                 one object, only nsboot_*/nsexec global
#                                        (scripts/localize-staticlib.sh)
#   $(LIBDIR)/libnsboot_rootfs.so.$(VERSION) the rootfs plugin (OCI code),
#   $(LIBDIR)/libnsboot_rootfs.so.$(SOMAJOR)  dlopen-ed by libnsboot on demand
#   $(INCLUDEDIR)/nsboot.h
#   $(BINDIR)/nsboot-runtime              the OCI runtime (runc's command line)
#   $(PKGCONFIGDIR)/nsboot.pc          dynamic: -lnsboot (Libs.private for --static)
#   $(PKGCONFIGDIR)/nsboot-static.pc   the archive plus its native libs
#
# Libs.private is what the Rust standard library linked into libnsboot.a
# needs (rustc --print native-static-libs). It is probed on an empty
# staticlib built by the same rustc, which takes 0.1 s, instead of
# `cargo rustc -- --print native-static-libs`, which would rebuild the
# crate with a different fingerprint every time. nsboot's own
# dependencies (libc, nix) add only -lc, already in the list; the static
# link of examples/c in tests/surfaces.rs fails if that ever changes.

PREFIX       ?= /usr/local
EXEC_PREFIX  ?= $(PREFIX)
LIBDIR       ?= $(EXEC_PREFIX)/lib
BINDIR       ?= $(EXEC_PREFIX)/bin
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR      ?=
CARGO        ?= cargo
RUSTC        ?= rustc
INSTALL      ?= install
CARGO_TARGET_DIR ?= target

NSBOOT_VERSION := $(shell sed -n 's/^version = "\([^"]*\)"/\1/p' Cargo.toml | head -n1)
NSBOOT_SOMAJOR := $(firstword $(subst ., ,$(NSBOOT_VERSION)))
# Install the release build unless PROFILE is given on the command line or
# in the environment: the top-level Makefile's own `PROFILE ?= debug` (for
# build and test) must not make `make install` ship a 10 MB debug library.
NSBOOT_INSTALL_PROFILE := $(if $(filter command line environment,$(origin PROFILE)),$(PROFILE),release)
NSBOOT_PROFILE_DIR := $(if $(filter dev debug,$(NSBOOT_INSTALL_PROFILE)),debug,$(NSBOOT_INSTALL_PROFILE))
NSBOOT_OUT := $(CARGO_TARGET_DIR)/$(NSBOOT_PROFILE_DIR)
NSBOOT_CARGO_PROFILE := $(if $(filter debug,$(NSBOOT_INSTALL_PROFILE)),dev,$(NSBOOT_INSTALL_PROFILE))

.PHONY: nsboot-build install uninstall

# NSBOOT_NO_BUILD=1: install what target/ already holds (used by the tests,
# which run inside `cargo test` and must not start a nested cargo build).
# NSBOOT_PLUGIN_DIR: where a program that links libnsboot.a statically looks
# for the rootfs plugin (libnsboot.so looks next to itself first).
nsboot-build:
ifneq ($(NSBOOT_NO_BUILD),1)
	NSBOOT_PLUGIN_DIR=$(LIBDIR) $(CARGO) build --profile $(NSBOOT_CARGO_PROFILE) --lib
	$(CARGO) build --profile $(NSBOOT_CARGO_PROFILE) -p nsboot-runtime --bin nsboot-runtime
endif

$(NSBOOT_OUT)/native-static-libs.txt:
	@mkdir -p $(NSBOOT_OUT)/nsboot-probe
	: > $(NSBOOT_OUT)/nsboot-probe/empty.rs
	$(RUSTC) --crate-type staticlib --crate-name nsboot_probe --print native-static-libs \
	    -o $(NSBOOT_OUT)/nsboot-probe/libnsboot_probe.a $(NSBOOT_OUT)/nsboot-probe/empty.rs 2>&1 \
	  | sed -n 's/^note: native-static-libs: //p' > $@.tmp
	test -s $@.tmp && mv $@.tmp $@

install: nsboot-build $(NSBOOT_OUT)/native-static-libs.txt
	$(INSTALL) -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(BINDIR)
	# NSBOOT_NO_BUILD=1 (the tests) may find no runtime binary: say so, go on.
	if [ -f $(NSBOOT_OUT)/nsboot-runtime ]; then $(INSTALL) -m 0755 $(NSBOOT_OUT)/nsboot-runtime $(DESTDIR)$(BINDIR)/nsboot-runtime; \
	else echo "make install: $(NSBOOT_OUT)/nsboot-runtime not built (cargo build -p nsboot-runtime): not installed" >&2; fi
	$(INSTALL) -m 0755 $(NSBOOT_OUT)/libnsboot.so $(DESTDIR)$(LIBDIR)/libnsboot.so.$(NSBOOT_VERSION)
	ln -sf libnsboot.so.$(NSBOOT_VERSION) $(DESTDIR)$(LIBDIR)/libnsboot.so.$(NSBOOT_SOMAJOR)
	ln -sf libnsboot.so.$(NSBOOT_SOMAJOR) $(DESTDIR)$(LIBDIR)/libnsboot.so
	$(INSTALL) -m 0755 $(NSBOOT_OUT)/libnsboot_rootfs.so $(DESTDIR)$(LIBDIR)/libnsboot_rootfs.so.$(NSBOOT_VERSION)
	ln -sf libnsboot_rootfs.so.$(NSBOOT_VERSION) $(DESTDIR)$(LIBDIR)/libnsboot_rootfs.so.$(NSBOOT_SOMAJOR)
	./scripts/localize-staticlib.sh $(NSBOOT_OUT)/libnsboot.a $(NSBOOT_OUT)/libnsboot-local.a
	$(INSTALL) -m 0644 $(NSBOOT_OUT)/libnsboot-local.a $(DESTDIR)$(LIBDIR)/libnsboot.a
	$(INSTALL) -m 0644 include/nsboot.h $(DESTDIR)$(INCLUDEDIR)/nsboot.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(NSBOOT_VERSION)|' -e "s|@LIBS_PRIVATE@|$$(cat $(NSBOOT_OUT)/native-static-libs.txt)|" \
	    cbind/nsboot.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/nsboot.pc
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(NSBOOT_VERSION)|' -e "s|@LIBS_PRIVATE@|$$(cat $(NSBOOT_OUT)/native-static-libs.txt)|" \
	    cbind/nsboot-static.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/nsboot-static.pc

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libnsboot.so.$(NSBOOT_VERSION) $(DESTDIR)$(LIBDIR)/libnsboot.so.$(NSBOOT_SOMAJOR) \
	      $(DESTDIR)$(LIBDIR)/libnsboot.so $(DESTDIR)$(LIBDIR)/libnsboot.a $(DESTDIR)$(INCLUDEDIR)/nsboot.h \
	      $(DESTDIR)$(LIBDIR)/libnsboot_rootfs.so.$(NSBOOT_VERSION) $(DESTDIR)$(LIBDIR)/libnsboot_rootfs.so.$(NSBOOT_SOMAJOR) \
	      $(DESTDIR)$(PKGCONFIGDIR)/nsboot.pc $(DESTDIR)$(PKGCONFIGDIR)/nsboot-static.pc \
	      $(DESTDIR)$(BINDIR)/nsboot-runtime
