package runc12

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"

	nsboot "nsboot.example/nsboot"
)

// The test binary imports this package, so its bootstrap speaks runc >=
// 1.2's dialect with nothing in the environment saying so: the caller here
// is runc >= 1.2's own nsenter test, by hand (no _LIBCONTAINER_SYNCPIPE,
// no NSBOOT_DIALECT, the message written at once, the pid JSON decoded
// strictly straight off the socket, where a setup byte would break it).
func TestBuiltForRunc12NeedsNoVariable(t *testing.T) {
	for _, env := range [][]string{nil, {"NSBOOT_DIALECT=1.1"}} {
		cfg := &nsboot.Config{Dialect: nsboot.Runc12, Create: []nsboot.Namespace{nsboot.UTS}}
		if os.Geteuid() != 0 {
			cfg.Create = append(cfg.Create, nsboot.User)
			cfg.Rootless = true
			cfg.UIDMap = []nsboot.IDMap{{0, uint32(os.Geteuid()), 1}}
			cfg.GIDMap = []nsboot.IDMap{{0, uint32(os.Getegid()), 1}}
		}
		msg, err := cfg.Encode()
		if err != nil {
			t.Fatal(err)
		}
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
		cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperInside$")
		cmd.ExtraFiles = []*os.File{child}
		cmd.Env = append([]string{"_LIBCONTAINER_INITPIPE=3", "RUNC12_INSIDE=1"}, env...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		child.Close()
		if _, err := parent.Write(msg); err != nil {
			t.Fatal(err)
		}
		var pids struct {
			Stage1 int `json:"stage1_pid"`
			Stage2 int `json:"stage2_pid"`
		}
		dec := json.NewDecoder(bufio.NewReader(parent))
		dec.DisallowUnknownFields()
		derr := dec.Decode(&pids)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("env %v: stage-0: %v", env, err)
		}
		if derr != nil {
			t.Fatalf("env %v: the pid JSON does not decode (a 1.1 setup byte?): %v", env, derr)
		}
		var ws syscall.WaitStatus
		_, _ = syscall.Wait4(pids.Stage1, &ws, 0, nil)
		if _, err := syscall.Wait4(pids.Stage2, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			t.Fatalf("env %v: stage-2: %v %v", env, err, ws)
		}
		parent.Close()
		t.Logf("env %v: pids %d %d", env, pids.Stage1, pids.Stage2)
	}
}

// TestHelperInside is the program inside the namespaces.
func TestHelperInside(t *testing.T) {
	if os.Getenv("RUNC12_INSIDE") == "" {
		t.Skip("runs only as the re-executed child")
	}
	if err := syscall.Sethostname([]byte("runc12-" + strconv.Itoa(os.Getpid()))); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}
