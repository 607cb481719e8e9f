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
	"unsafe"
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
	// Stage1Pidfd and Stage2Pidfd are pidfds of the stages when
	// Config.Pidfds asked for them (nil otherwise): handles that never
	// come to name another process when a pid is reused. Wait closes them.
	Stage1Pidfd, Stage2Pidfd *os.File

	cmd         *exec.Cmd
	done        bool
	status      syscall.WaitStatus
	pidfdStatus int
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
	var pidfds []*os.File
	if herr == nil && cfg.Pidfds {
		pidfds, herr = readPidfds(parent)
		if herr != nil {
			// The pids are known: stage-0 killed them as it failed; reap.
			for _, pid := range []int{pids.Stage1, pids.Stage2} {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, 0, nil)
			}
		}
	}
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
	if pidfds != nil {
		p.Stage1Pidfd, p.Stage2Pidfd = pidfds[0], pidfds[1]
	}
	if werr == nil && !state.Success() {
		werr = errors.New(state.String())
	}
	if werr != nil {
		p.Kill()
		_, _ = p.Wait()
		if cfg.ErrorRecords {
			if se := readErrorRecord(parent); se != nil {
				return nil, se
			}
		}
		return nil, fmt.Errorf("nsboot: bootstrap failed: stage-0: %w", werr)
	}
	return p, nil
}

// StageError is a stage's structured error (Config.ErrorRecords).
type StageError struct {
	Stage   int           `json:"stage"`
	Step    string        `json:"step"`
	Syscall string        `json:"syscall"`
	Errno   syscall.Errno `json:"errno"`
	Path    string        `json:"path"`
	// Cause is a stable name ("userns_max_zero", "map_helper_missing",
	// "map_helper_not_setuid", "no_subordinate_ids", "host_seccomp", ...)
	// and Hint says what to change; both empty when not diagnosed.
	Cause   string `json:"cause"`
	Hint    string `json:"hint"`
	Message string `json:"message"`
}

func (e *StageError) Error() string {
	s := fmt.Sprintf("nsboot: bootstrap failed: stage-%d: %s", e.Stage, e.Message)
	if e.Hint != "" {
		s += " (hint: " + e.Hint + ")"
	}
	return s
}

// Unwrap gives the errno, so errors.Is(err, syscall.ENOENT) works.
func (e *StageError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// parseErrorRecord decodes a {"nsboot_error":{...}} line, nil otherwise.
func parseErrorRecord(line []byte) *StageError {
	if !bytes.HasPrefix(line, []byte(`{"nsboot_error"`)) {
		return nil
	}
	var rec struct {
		E *StageError `json:"nsboot_error"`
	}
	if json.Unmarshal(line, &rec) != nil {
		return nil
	}
	return rec.E
}

// readErrorRecord reads what the (now all exited) stages left on the init
// socket and returns the first error record.
func readErrorRecord(sock *os.File) *StageError {
	var all []byte
	buf := make([]byte, 4096)
	for len(all) < 1<<16 {
		n, err := sock.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	for _, l := range bytes.Split(all, []byte("\n")) {
		if e := parseErrorRecord(l); e != nil {
			return e
		}
	}
	return nil
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
		if n == 1 && (len(line) < 256 || (len(line) < 1<<16 && bytes.HasPrefix(line, []byte(`{"nsboot_error"`)))) {
			line = append(line, b[0])
			continue
		}
		return p, fmt.Errorf("nsboot: bootstrap failed before the pid line (%q, %v)", line, err)
	}
	if e := parseErrorRecord(line); e != nil {
		return p, e
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.Stage1 <= 0 || p.Stage2 <= 0 || dec.More() {
		return p, fmt.Errorf("nsboot: bad pid line %q", line)
	}
	return p, nil
}

// readPidfds reads what follows the pid line when Config.Pidfds is set:
// one byte 'P' carrying the pidfds of stage-1 and stage-2 (SCM_RIGHTS).
func readPidfds(sock *os.File) ([]*os.File, error) {
	b := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(2*4))
	n, oobn, _, _, err := syscall.Recvmsg(int(sock.Fd()), b, oob, syscall.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("nsboot: read pidfds: %w", err)
	}
	var fds []int
	if msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn]); perr == nil {
		for _, m := range msgs {
			if got, rerr := syscall.ParseUnixRights(&m); rerr == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n != 1 || b[0] != 'P' || len(fds) != 2 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		return nil, fmt.Errorf("nsboot: pidfds were asked for but stage-0 sent %d bytes (%q) with %d fds", n, b[:n], len(fds))
	}
	return []*os.File{os.NewFile(uintptr(fds[0]), "nsboot-stage1-pidfd"), os.NewFile(uintptr(fds[1]), "nsboot-stage2-pidfd")}, nil
}

// sysPidfdSendSignal is pidfd_send_signal(2): the same number on every
// architecture (syscalls added after 5.0 share one table).
const sysPidfdSendSignal = 424

// PidfdSignal sends sig to the process pidfd names (pidfd_send_signal):
// ESRCH once it has exited, even when its pid names another process now.
func PidfdSignal(pidfd *os.File, sig syscall.Signal) error {
	_, _, e := syscall.Syscall6(sysPidfdSendSignal, pidfd.Fd(), uintptr(sig), 0, 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// PidfdWait waits for and reaps the child pidfd names (waitid(P_PIDFD))
// and returns its status as a shell reports it.
func PidfdWait(pidfd *os.File) (int, error) {
	const pPidfd = 3
	// siginfo_t: signo, errno, code, pad (int32 each), then pid, uid, status.
	var info [32]int32
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPidfd, pidfd.Fd(), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		break
	}
	const cldExited = 1
	if info[2] == cldExited {
		return int(info[6]), nil
	}
	return 128 + int(info[6]), nil
}

// Signal sends sig to the program (stage-2): by pidfd when there is one.
func (p *Process) Signal(sig syscall.Signal) error {
	if p.done {
		return errors.New("nsboot: process already waited for")
	}
	if p.Stage2Pidfd != nil {
		return PidfdSignal(p.Stage2Pidfd, sig)
	}
	return syscall.Kill(p.Stage2Pid, sig)
}

// Kill sends SIGKILL to stage-2 and stage-1.
func (p *Process) Kill() {
	if !p.done && p.Stage2Pidfd != nil {
		_ = PidfdSignal(p.Stage2Pidfd, syscall.SIGKILL)
		_ = PidfdSignal(p.Stage1Pidfd, syscall.SIGKILL)
		return
	}
	if !p.done {
		_ = syscall.Kill(p.Stage2Pid, syscall.SIGKILL)
		_ = syscall.Kill(p.Stage1Pid, syscall.SIGKILL)
	}
}

// Wait reaps stage-1 and stage-2 and returns the program's status as a
// shell reports it: the exit code, or 128+N after signal N.
func (p *Process) Wait() (int, error) {
	if !p.done && p.Stage2Pidfd != nil {
		_, _ = PidfdWait(p.Stage1Pidfd)
		code, err := PidfdWait(p.Stage2Pidfd)
		if err != nil {
			return -1, fmt.Errorf("nsboot: wait for stage-2 by pidfd: %w", err)
		}
		p.done = true
		p.pidfdStatus = code
		p.Stage1Pidfd.Close()
		p.Stage2Pidfd.Close()
		p.InitPipe.Close()
		_ = p.cmd.Wait()
	}
	if p.Stage2Pidfd != nil {
		return p.pidfdStatus, nil
	}
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
