/* The host program of the bootstrap benchmark: its constructor (nsboot's,
 * or runc's nsexec for the runc build) does the work; main returns 0.
 * PAD_BYTES (compile-time) pads the binary to a chosen size for the
 * CVE-2019-5736 copy measurement. */
#ifdef RUNC_NSEXEC
extern void nsexec(void);
__attribute__((constructor)) static void init(void) { nsexec(); }
#else
#include "nsboot.h"
#endif
#ifndef PAD_BYTES
#define PAD_BYTES 1
#endif
/* Initialised data so the bytes are really in the file. */
static volatile const unsigned char pad[PAD_BYTES] = { 1 };
int main(void)
{
#ifndef RUNC_NSEXEC
	if (nsboot_version() == 0)
		return 2;
#endif
	return pad[0] == 1 ? 0 : 3;
}
