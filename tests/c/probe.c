/*
 * probe: a host program that links libnsboot and nothing else of ours.
 * When started with _LIBCONTAINER_INITPIPE, the library's ELF constructor
 * runs the bootstrap before main; main then runs in stage-2, inside the
 * namespaces, and executes argv[1..] there (the test's checks).
 * Without arguments it prints "probe-main" and exits 0.
 */
#include <stdio.h>
#include <unistd.h>

#include "nsboot.h"

int main(int argc, char **argv)
{
	/* Reference the library so the linker keeps it (and its constructor). */
	if (nsboot_version() == NULL)
		return 2;
	if (argc < 2) {
		puts("probe-main");
		return 0;
	}
	execvp(argv[1], argv + 1);
	perror("probe: execvp");
	return 127;
}
