// Package nsboot runs nsboot's namespace bootstrap (runc's nsenter, in
// Rust) in a Go program, and builds and sends bootstrap messages from Go.
//
// Importing the package links libnsboot.a and installs a C constructor that
// calls nsexec() before the Go runtime starts, exactly as runc's
// libcontainer/nsenter does:
//
//	import _ "nsboot.example/nsboot"
//
// A process started with an init socket in _LIBCONTAINER_INITPIPE (see
// Start) is bootstrapped there: stage-0 and stage-1 exit inside the
// constructor, and stage-2 returns into the Go runtime inside the
// namespaces. Without the variable the constructor returns at once.
//
// The wire dialect the bootstrap speaks is detected at run time
// (NSBOOT_DIALECT, else _LIBCONTAINER_SYNCPIPE, else runc 1.1) unless the
// program fixes it when it is built: import _ "nsboot.example/nsboot/runc12" (or
// "nsboot.example/nsboot/runc11") instead, which also links this package.
//
// Linking: the preamble asks for -l:libnsboot.a and the native libraries
// the Rust standard library needs. After `make install` (PREFIX=/usr/local)
// the linker finds it; otherwise point it at the directory holding
// libnsboot.a with CGO_LDFLAGS="-L/path/to/lib" (for a build tree:
// -L target/release).
//
// The module path is nsboot.example/nsboot: `.example` is a reserved name,
// so nothing is ever fetched for it. Module mode: `require
// nsboot.example/nsboot v0.0.0` plus `replace nsboot.example/nsboot =>
// /path/to/cbind/go/nsboot` (or `go mod vendor` after that), as
// examples/go/nsboot-hello/go.mod does. GOPATH mode: make this directory
// $GOPATH/src/nsboot.example/nsboot (a copy or a symlink). No download is
// needed either way.
//
// Do not link libnsboot.a into a program that already links another Rust
// staticlib (duplicate std symbols); link libnsboot.so instead.
package nsboot

/*
#cgo LDFLAGS: -l:libnsboot.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
extern void nsexec(void);

__attribute__((constructor)) static void nsboot_go_init(void)
{
	nsexec();
}
*/
import "C"
