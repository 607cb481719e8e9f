// nsboot-hello re-executes itself inside new namespaces, the way runc
// starts its init: the blank import links libnsboot and runs the bootstrap
// before the Go runtime starts; nsboot.Start plays runc's part.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"nsboot.example/nsboot"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "inside" {
		inside()
		return
	}
	cfg := &nsboot.Config{Create: []nsboot.Namespace{nsboot.UTS, nsboot.Mount, nsboot.PID}}
	if os.Geteuid() != 0 { // rootless: map ourselves to root in a new user namespace
		cfg.Create = append(cfg.Create, nsboot.User)
		cfg.Rootless = true
		cfg.UIDMap = []nsboot.IDMap{{Inside: 0, Outside: uint32(os.Geteuid()), Count: 1}}
		cfg.GIDMap = []nsboot.IDMap{{Inside: 0, Outside: uint32(os.Getegid()), Count: 1}}
	}
	cmd := exec.Command("/proc/self/exe", "inside")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	p, err := nsboot.Start(cmd, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	status, err := p.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("outside: pid %d exited with %d\n", p.Stage2Pid, status)
	os.Exit(status)
}

func inside() {
	if err := syscall.Sethostname([]byte("nsboot-hello")); err != nil {
		fmt.Fprintln(os.Stderr, "sethostname:", err)
		os.Exit(1)
	}
	done := make(chan string)
	go func() {
		runtime.GC()
		out, _ := exec.Command("hostname").Output()
		done <- string(out)
	}()
	fmt.Printf("inside: pid %d uid %d hostname %s", os.Getpid(), os.Getuid(), <-done)
}
