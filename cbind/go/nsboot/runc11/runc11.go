// Package runc11 fixes, when the program is built, the wire dialect its
// bootstrap speaks to runc 1.1's (a setup byte first; attribute 27290 =
// MOUNT_SOURCES), whatever NSBOOT_DIALECT or _LIBCONTAINER_SYNCPIPE say:
//
//	import _ "nsboot.example/nsboot/runc11"
//
// Without it (and without nsboot/runc12) the dialect is detected at run
// time (see NSBOOT_BOOTSTRAP_DIALECT in nsboot.h).
package runc11

/*
const int nsboot_bootstrap_dialect = 0; // NSBOOT_DIALECT_RUNC_1_1
*/
import "C"

import _ "nsboot.example/nsboot" // the bootstrap itself (libnsboot and its constructor)
