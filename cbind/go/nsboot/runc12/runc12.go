// Package runc12 fixes, when the program is built, the wire dialect its
// bootstrap speaks to runc >= 1.2's (no setup byte; attribute 27290 =
// TIMENSOFFSET): import it for its side effect instead of, or next to,
// the nsboot package,
//
//	import _ "nsboot.example/nsboot/runc12"
//
// and the bootstrap needs no NSBOOT_DIALECT and no _LIBCONTAINER_SYNCPIPE;
// the build wins over both (see NSBOOT_BOOTSTRAP_DIALECT in nsboot.h).
// Importing nsboot/runc11 as well fails the link (the symbol is defined
// twice), so a program cannot choose both.
package runc12

/*
const int nsboot_bootstrap_dialect = 1; // NSBOOT_DIALECT_RUNC_1_2
*/
import "C"

import _ "nsboot.example/nsboot" // the bootstrap itself (libnsboot and its constructor)
