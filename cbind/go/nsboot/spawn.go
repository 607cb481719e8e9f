package nsboot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
)

// Process is a bootstrapped program: stage-0 has exited 0 and stage-2 runs
// inside the namespaces. Both stage-1 and stage-2 are children of the
// caller (CLONE_PARENT): Wait reaps them.
type Process struct {
	// Stage1Pid exits on its own once stage-2 is started.
	Stage1Pid int
	// Stage2Pid is the program inside the namespaces.
	Stage2Pid int
	// InitPipe is the caller's end of the init socket, still connected to
	// stage-2; Wait closes it.
	InitPipe *os.File

	cmd    *exec.Cmd
	done   bool
	status syscall.WaitStatus
}

// Start runs cmd as a bootstrap: cmd must be a program that runs nsboot's
// (or runc's) nsexec before main — a Go program importing this package, a
// C program linking libnsboot, or anything started with
// LD_PRELOAD=libnsboot.so. Start adds the init socket to cmd.ExtraFiles
// and _LIBCONTAINER_INITPIPE to its environment, waits for the setup
// byte, sends cfg, reads the pid line with a strict decoder and waits for
// stage-0. On failure nothing is left running.
//
// Do not call cmd.Wait: Start waits for stage-0 itself, and Process.Wait
// finishes cmd (its output copying ends when stage-2 exits).
//
// When the bootstrap fails before the pid line (a bad namespace path, for
// instance), stage-1 has already exited but the protocol never told us its
// pid: it stays a zombie child until the caller exits (runc's callers have
// the same limit).
func Start(cmd *exec.Cmd, cfg *Config) (*Process, error) {
	msg, err := cfg.Encode()
	if err != nil {
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nsboot: socketpair: %w", err)
	}
	parent := os.NewFile(uintptr(fds[0]), "nsboot-init-parent")
	child := os.NewFile(uintptr(fds[1]), "nsboot-init-child")
	cmd.ExtraFiles = append(cmd.ExtraFiles, child)
	fd := 2 + len(cmd.ExtraFiles)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	dialect := "1.1"
	if cfg.Dialect == Runc12 {
		dialect = "1.2"
	}
	// Always say the dialect, so an inherited variable cannot make the
	// bootstrap guess otherwise.
	cmd.Env = append(cmd.Env, "_LIBCONTAINER_INITPIPE="+strconv.Itoa(fd), "NSBOOT_DIALECT="+dialect)
	if err := cmd.Start(); err != nil {
		child.Close()
		parent.Close()
		return nil, fmt.Errorf("nsboot: start %s: %w", cmd.Path, err)
	}
	child.Close()

	pids, herr := handshake(parent, msg, cfg.Dialect)
	if herr != nil {
		_ = cmd.Process.Kill()
	}
	// Only the process: cmd.Wait would also wait for EOF on output pipes
	// that stage-2 still holds.
	state, werr := cmd.Process.Wait()
	if herr != nil {
		parent.Close()
		_ = cmd.Wait() // output copying ends: stage-0 killed what it started
		return nil, herr
	}
	p := &Process{Stage1Pid: pids.Stage1, Stage2Pid: pids.Stage2, InitPipe: parent, cmd: cmd}
	if werr == nil && !state.Success() {
		werr = errors.New(state.String())
	}
	if werr != nil {
		p.Kill()
		_, _ = p.Wait()
		return nil, fmt.Errorf("nsboot: bootstrap failed: stage-0: %w", werr)
	}
	return p, nil
}

type pidLine struct {
	Stage1 int `json:"stage1_pid"`
	Stage2 int `json:"stage2_pid"`
}

func handshake(sock *os.File, msg []byte, dialect Dialect) (pidLine, error) {
	var p pidLine
	b := make([]byte, 1)
	if dialect == Runc11 {
		if n, err := sock.Read(b); n != 1 || b[0] != 0 {
			return p, fmt.Errorf("nsboot: bootstrap failed before the setup byte (read %d bytes: %v)", n, err)
		}
	}
	if _, err := sock.Write(msg); err != nil {
		return p, fmt.Errorf("nsboot: write the bootstrap message: %w", err)
	}
	var line []byte
	for {
		n, err := sock.Read(b)
		if n == 1 && b[0] == '\n' {
			break
		}
		if n == 1 && len(line) < 256 {
			line = append(line, b[0])
			continue
		}
		return p, fmt.Errorf("nsboot: bootstrap failed before the pid line (%q, %v)", line, err)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Stage1 <= 0 || p.Stage2 <= 0 || dec.More() {
		return p, fmt.Errorf("nsboot: bad pid line %q", line)
	}
	return p, nil
}

// Signal sends sig to the program (stage-2).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.done {
		return errors.New("nsboot: process already waited for")
	}
	return syscall.Kill(p.Stage2Pid, sig)
}

// Kill sends SIGKILL to stage-2 and stage-1.
func (p *Process) Kill() {
	if !p.done {
		_ = syscall.Kill(p.Stage2Pid, syscall.SIGKILL)
		_ = syscall.Kill(p.Stage1Pid, syscall.SIGKILL)
	}
}

// Wait reaps stage-1 and stage-2 and returns the program's status as a
// shell reports it: the exit code, or 128+N after signal N.
func (p *Process) Wait() (int, error) {
	if !p.done {
		var ws syscall.WaitStatus
		for {
			_, err := syscall.Wait4(p.Stage1Pid, &ws, 0, nil)
			if err != syscall.EINTR {
				break
			}
		}
		for {
			_, err := syscall.Wait4(p.Stage2Pid, &p.status, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return -1, fmt.Errorf("nsboot: wait for stage-2 (pid %d): %w", p.Stage2Pid, err)
			}
			break
		}
		p.done = true
		p.InitPipe.Close()
		// Let os/exec finish copying output and close its pipes; its own
		// wait fails (stage-0 is already reaped), which is expected.
		_ = p.cmd.Wait()
	}
	if p.status.Signaled() {
		return 128 + int(p.status.Signal()), nil
	}
	return p.status.ExitStatus(), nil
}
