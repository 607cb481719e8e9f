/*
 * probe_fixed: the probe of a program that fixed the bootstrap's wire
 * dialect when it was built, as a runc >= 1.2 drop-in does (see
 * NSBOOT_BOOTSTRAP_DIALECT in nsboot.h). PROBE_DIALECT comes from the
 * compiler's command line. Like runc's nsenter.go, a constructor of the
 * program calls nsexec() (linked statically, that call is what brings the
 * bootstrap in; linked with libnsboot.so, the library's own constructor ran
 * it first and the call returns at once in stage-2).
 */
#include "probe.c"

NSBOOT_BOOTSTRAP_DIALECT(PROBE_DIALECT);

__attribute__((constructor)) static void probe_init(void)
{
	nsexec();
}
