package server

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	nsboot "nsboot.example/nsboot"
)

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (the containers create UTS, IPC, mount and PID namespaces)")
	}
}

func children(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	return strings.TrimSpace(string(b))
}

// 8 goroutines (each on its own OS thread, while other goroutines keep
// allocating and the GC runs) start 200 containers through the server:
// all exit 3 as told and the server is left with no child.
func TestGoroutines200Containers(t *testing.T) {
	needRoot(t)
	if err := Err(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var busy sync.WaitGroup
	for i := 0; i < 4; i++ {
		busy.Add(1)
		go func() {
			defer busy.Done()
			for {
				select {
				case <-stop:
					return
				default:
					_ = make([]byte, 1<<16)
					runtime.Gosched()
				}
			}
		}()
	}
	cfg := &nsboot.Config{Create: []nsboot.Namespace{nsboot.UTS, nsboot.IPC, nsboot.Mount, nsboot.PID}}
	var ok int32
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			for i := 0; i < 25; i++ {
				p, err := Start(cfg, "/bin/sh", []string{"sh", "-c", "exit 3"}, nil, nil, nil, os.Stderr)
				if err != nil {
					errs <- err
					continue
				}
				if st, err := p.Wait(); err != nil || st != 3 {
					errs <- fmt.Errorf("status %d, %v", st, err)
					continue
				}
				atomic.AddInt32(&ok, 1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	busy.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if ok != 200 {
		t.Fatalf("%d/200 succeeded", ok)
	}
	if c := children(Pid()); c != "" {
		t.Fatalf("server children left: %q", c)
	}
}

// A stage's structured error comes back typed.
func TestStageErrorThroughServer(t *testing.T) {
	needRoot(t)
	cfg := &nsboot.Config{Join: []nsboot.JoinPath{{Type: nsboot.Net, Path: "/nonexistent/nsboot-go-server/net"}}}
	_, err := Start(cfg, "/bin/true", []string{"true"}, nil, nil, nil, nil)
	se, ok := err.(*nsboot.StageError)
	if !ok || se.Stage != 1 || se.Errno != syscall.ENOENT || se.Path != "/nonexistent/nsboot-go-server/net" {
		t.Fatalf("got %#v (%v)", err, err)
	}
}

// The server of a Go host goes away when the host exits, and when it is
// SIGKILLed (the host here: this test binary, re-executed).
func TestServerDiesWithHost(t *testing.T) {
	needRoot(t)
	for _, mode := range []string{"exit", "kill"} {
		cmd := exec.Command("/proc/self/exe", "-test.run=^TestHelperHost$")
		cmd.Env = append(os.Environ(), "NSBOOTGO_HOST="+mode)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		line, _ := r.ReadString('\n')
		srv, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "server ")))
		if err != nil {
			t.Fatalf("%s: %q", mode, line)
		}
		watch := []int{srv}
		if mode == "kill" {
			line, _ = r.ReadString('\n')
			f := strings.Fields(line)
			if len(f) != 2 || f[0] != "started" {
				t.Fatalf("kill: %q", line)
			}
			sleeper, _ := strconv.Atoi(f[1])
			watch = append(watch, sleeper)
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		for _, pid := range watch {
			deadline := time.Now().Add(5 * time.Second)
			for {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if err != nil || strings.Contains(string(b), ") Z ") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d (server %d) outlived its host", mode, pid, srv)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

func TestHelperHost(t *testing.T) {
	mode := os.Getenv("NSBOOTGO_HOST")
	if mode == "" {
		t.Skip("runs only as the re-executed host")
	}
	fmt.Printf("server %d\n", Pid())
	if mode == "kill" {
		// A long-running container, then wait to be killed.
		p, err := Start(&nsboot.Config{Create: []nsboot.Namespace{nsboot.UTS}}, "/bin/sleep", []string{"sleep", "100"}, nil, nil, nil, nil)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("started", p.Pid)
		select {}
	}
	os.Exit(0)
}
