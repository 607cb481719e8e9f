// Package server offers nsboot's bootstrap server (zygote) to Go
// programs: importing it forks, from a C constructor that runs before the
// Go runtime starts (so while the process has one thread), a small
// single-threaded server; any goroutine can then start programs inside
// new namespaces through it with Start, with no cgo tricks and no helper
// executable per container. The server dies with the program (a pidfd of
// it), and refuses requests from any other process.
//
//	import "nsboot.example/nsboot/server"
//
//	p, err := server.Start(&nsboot.Config{Create: []nsboot.Namespace{nsboot.UTS, nsboot.PID}},
//		"/bin/sh", []string{"sh", "-c", "hostname"}, nil, nil, os.Stdout, os.Stderr)
//	status, err := p.Wait()
//
// A process started as a bootstrap (_LIBCONTAINER_INITPIPE set) does not
// start a server.
package server

/*
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct nsboot_server nsboot_server;
typedef struct nsboot_served nsboot_served;
typedef struct nsboot_msg nsboot_msg;
typedef struct nsboot_error nsboot_error;
// The status enums are int-sized.
int nsboot_server_start(nsboot_server **out, nsboot_error **err);
int32_t nsboot_server_pid(const nsboot_server *s);
int nsboot_server_run(const nsboot_server *s, const nsboot_msg *msg, const char *path, int program_fd,
		      const char *const *argv, const char *const *envp, int in, int out, int errfd,
		      nsboot_served **served, nsboot_error **err);
int32_t nsboot_served_pid(const nsboot_served *s);
int nsboot_served_pidfd(const nsboot_served *s);
int nsboot_served_wait(nsboot_served *s, int *status, nsboot_error **err);
void nsboot_served_free(nsboot_served *s);
int nsboot_msg_decode(const uint8_t *buf, size_t len, int dialect, nsboot_msg **out, nsboot_error **err);
void nsboot_msg_free(nsboot_msg *m);
const char *nsboot_error_message(const nsboot_error *e);
int nsboot_error_errno(const nsboot_error *e);
int nsboot_error_stage(const nsboot_error *e);
const char *nsboot_error_step(const nsboot_error *e);
const char *nsboot_error_syscall(const nsboot_error *e);
const char *nsboot_error_path(const nsboot_error *e);
const char *nsboot_error_cause(const nsboot_error *e);
const char *nsboot_error_hint(const nsboot_error *e);
void nsboot_error_free(nsboot_error *e);
int nsboot_pidfd_kill(int pidfd, int sig, nsboot_error **err);

static nsboot_server *nsboot_go_srv;
static nsboot_error *nsboot_go_srv_err;

__attribute__((constructor)) static void nsboot_go_server_init(void)
{
	if (getenv("_LIBCONTAINER_INITPIPE") != NULL)
		return;
	nsboot_server_start(&nsboot_go_srv, &nsboot_go_srv_err);
}

static nsboot_server *nsboot_go_server(void) { return nsboot_go_srv; }
static nsboot_error *nsboot_go_server_error(void) { return nsboot_go_srv_err; }
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	nsboot "nsboot.example/nsboot"
)

// Pid is the server's pid, or -1 when it did not start.
func Pid() int {
	return int(C.nsboot_server_pid(C.nsboot_go_server()))
}

// Err says why the server did not start (nil when it runs).
func Err() error {
	if C.nsboot_go_server() != nil {
		return nil
	}
	if e := C.nsboot_go_server_error(); e != nil {
		return errors.New("nsboot: bootstrap server: " + C.GoString(C.nsboot_error_message(e)))
	}
	return errors.New("nsboot: bootstrap server not started (a bootstrap child)")
}

// Process is a program the server started.
type Process struct {
	// Pid of the program (stage-2), in this program's PID namespace.
	Pid    int
	served *C.nsboot_served
	done   bool
	status int
}

func takeError(e *C.nsboot_error) error {
	defer C.nsboot_error_free(e)
	if C.nsboot_error_stage(e) >= 0 {
		str := func(p *C.char) string {
			if p == nil {
				return ""
			}
			return C.GoString(p)
		}
		return &nsboot.StageError{
			Stage:   int(C.nsboot_error_stage(e)),
			Step:    str(C.nsboot_error_step(e)),
			Syscall: str(C.nsboot_error_syscall(e)),
			Errno:   syscall.Errno(C.nsboot_error_errno(e)),
			Path:    str(C.nsboot_error_path(e)),
			Cause:   str(C.nsboot_error_cause(e)),
			Hint:    str(C.nsboot_error_hint(e)),
			Message: C.GoString(C.nsboot_error_message(e)),
		}
	}
	msg := C.GoString(C.nsboot_error_message(e))
	if n := C.nsboot_error_errno(e); n != 0 {
		return fmt.Errorf("nsboot: %s: %w", msg, syscall.Errno(n))
	}
	return errors.New("nsboot: " + msg)
}

func cStrings(ss []string) (**C.char, func()) {
	arr := C.malloc(C.size_t(len(ss)+1) * C.size_t(unsafe.Sizeof(uintptr(0))))
	p := (*[1 << 28]*C.char)(arr)[: len(ss)+1 : len(ss)+1]
	for i, s := range ss {
		p[i] = C.CString(s)
	}
	p[len(ss)] = nil
	return (**C.char)(arr), func() {
		for i := range ss {
			C.free(unsafe.Pointer(p[i]))
		}
		C.free(arr)
	}
}

func fdOf(f *os.File) C.int {
	if f == nil {
		return -1
	}
	return C.int(f.Fd())
}

// Start runs path with argv (argv[0] included) inside the namespaces cfg
// describes, through the server; env nil means the server's environment
// (this program's when it started); nil stdio files mean /dev/null.
// Safe from any goroutine, concurrently. Returns once the program runs.
func Start(cfg *nsboot.Config, path string, argv, env []string, stdin, stdout, stderr *os.File) (*Process, error) {
	srv := C.nsboot_go_server()
	if srv == nil {
		return nil, Err()
	}
	c := *cfg
	c.Dialect = nsboot.Runc12
	buf, err := c.Encode()
	if err != nil {
		return nil, err
	}
	var msg *C.nsboot_msg
	var cerr *C.nsboot_error
	if C.nsboot_msg_decode((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), 1, &msg, &cerr) != 0 {
		return nil, takeError(cerr)
	}
	defer C.nsboot_msg_free(msg)
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cargv, freeArgv := cStrings(argv)
	defer freeArgv()
	var cenv **C.char
	if env != nil {
		e, freeEnv := cStrings(env)
		defer freeEnv()
		cenv = e
	}
	var served *C.nsboot_served
	st := C.nsboot_server_run(srv, msg, cpath, -1, cargv, cenv, fdOf(stdin), fdOf(stdout), fdOf(stderr), &served, &cerr)
	runtime.KeepAlive(stdin)
	runtime.KeepAlive(stdout)
	runtime.KeepAlive(stderr)
	if st != 0 {
		return nil, takeError(cerr)
	}
	return &Process{Pid: int(C.nsboot_served_pid(served)), served: served}, nil
}

// Signal sends sig to the program by pidfd (ESRCH once it has exited).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.done {
		return errors.New("nsboot: process already waited for")
	}
	var cerr *C.nsboot_error
	if C.nsboot_pidfd_kill(C.nsboot_served_pidfd(p.served), C.int(sig), &cerr) != 0 {
		return takeError(cerr)
	}
	return nil
}

// Wait returns the program's status as a shell reports it (the exit
// code, or 128+N after signal N), which the server sends once it reaped
// it, and releases the process.
func (p *Process) Wait() (int, error) {
	if p.done {
		return p.status, nil
	}
	var st C.int
	var cerr *C.nsboot_error
	if C.nsboot_served_wait(p.served, &st, &cerr) != 0 {
		return -1, takeError(cerr)
	}
	p.done = true
	p.status = int(st)
	C.nsboot_served_free(p.served)
	p.served = nil
	return p.status, nil
}
