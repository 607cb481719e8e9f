package nsboot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unsafe"
)

// Namespace is a namespace type, named as in /proc/self/ns.
type Namespace string

// The namespace types.
const (
	User   Namespace = "user"
	Mount  Namespace = "mnt"
	PID    Namespace = "pid"
	UTS    Namespace = "uts"
	IPC    Namespace = "ipc"
	Net    Namespace = "net"
	Cgroup Namespace = "cgroup"
	Time   Namespace = "time"
)

var cloneFlag = map[Namespace]uint32{
	Cgroup: 0x02000000, IPC: 0x08000000, Mount: 0x00020000, Net: 0x40000000,
	PID: 0x20000000, User: 0x10000000, UTS: 0x04000000, Time: 0x00000080,
}

// CloneFlag is the CLONE_NEW* flag of n, 0 for an unknown name.
func (n Namespace) CloneFlag() uint32 { return cloneFlag[n] }

// JoinPath names a namespace to join: Type is entered through the file Path
// (such as /proc/PID/ns/net).
type JoinPath struct {
	Type Namespace
	Path string
}

// IDMap is one line of a uid or gid map: ids Inside..Inside+Count-1 in the
// namespace are Outside..Outside+Count-1 outside it.
type IDMap struct {
	Inside, Outside, Count uint32
}

// Dialect is the runc wire dialect a message is written in.
type Dialect int

const (
	// Runc11 is runc 1.1's dialect (leading \x00 byte; attribute 27290 is
	// MOUNT_SOURCES; time offsets travel in nsboot's extension 27303).
	Runc11 Dialect = iota
	// Runc12 is runc >= 1.2's (no leading byte; 27290 is TIMENSOFFSET).
	Runc12
)

// TimeOffset shifts one clock of a new time namespace: Clock is
// "monotonic" or "boottime"; 0 <= Nsecs < 1e9.
type TimeOffset struct {
	Clock string
	Secs  int64
	Nsecs int64
}

// Config is the content of a bootstrap message (either dialect, plus
// nsboot's rootfs extension).
type Config struct {
	// Dialect selects the wire dialect (default Runc11); Start tells the
	// bootstrap which one with NSBOOT_DIALECT.
	Dialect Dialect
	// TimeOffsets for a new time namespace (Create must hold Time).
	TimeOffsets []TimeOffset
	// Create lists the namespaces to create.
	Create []Namespace
	// Join lists the namespaces to join, in order (put User first).
	Join []JoinPath
	// UIDMap and GIDMap map a new user namespace.
	UIDMap, GIDMap []IDMap
	// UIDMapHelper and GIDMapHelper are newuidmap/newgidmap paths, used
	// when writing a map directly fails with EPERM.
	UIDMapHelper, GIDMapHelper string
	// SetGroups: stage-2 calls setgroups(0, NULL) (unless Rootless), and
	// setgroups is not denied.
	SetGroups bool
	// Rootless: the caller is unprivileged (setgroups is denied unless
	// SetGroups).
	Rootless bool
	// OOMScoreAdj, when non-nil, is written to /proc/self/oom_score_adj.
	OOMScoreAdj *int
	// RootfsConfig is an OCI runtime-spec config.json that stage-2 applies
	// (nsboot extension); RootfsBundle resolves a relative root.path;
	// NoPivot enters the rootfs without pivot_root; Exec makes stage-2
	// apply the config's process (user, capabilities, seccomp, ...) and
	// exec process.args instead of returning (NSBOOT_ROOTFS_EXEC).
	RootfsConfig []byte
	RootfsBundle string
	NoPivot      bool
	// Pidfds asks stage-0 for pidfds of stage-1 and stage-2 (nsboot
	// extension NSBOOT_CALLER_FLAGS, so the program must bootstrap with
	// nsboot): Process.Stage1Pidfd/Stage2Pidfd, and Signal and Wait go by
	// pidfd. Off, the message is runc's byte for byte.
	Pidfds bool
	// ErrorRecords asks a failing stage for a structured error: Start then
	// returns a *StageError (stage, step, syscall, errno, path, cause,
	// hint). Same extension attribute as Pidfds.
	ErrorRecords bool
	// Exec: see NoPivot above (NSBOOT_ROOTFS_EXEC).
	Exec bool
}

// Message and attribute numbers (runc's libcontainer/message_linux.go).
const (
	initMsg          = 62000
	nlmFRequest      = 1
	attrCloneFlags   = 27281
	attrNsPaths      = 27282
	attrUIDMap       = 27283
	attrGIDMap       = 27284
	attrSetgroup     = 27285
	attrOOMScoreAdj  = 27286
	attrRootlessEUID = 27287
	attrUIDMapPath   = 27288
	attrGIDMapPath   = 27289
	attrRootfsConfig = 27300
	attrRootfsBundle = 27301
	attrRootfsFlags  = 27302
	attrTimensOffset = 27290 // runc >= 1.2 only
	attrNsbootTimens = 27303 // runc 1.1 dialect only (nsboot extension)
	attrCallerFlags  = 27304 // nsboot extension: CALLER_FLAG_* bits
	callerPidfds     = 1
	callerErrors     = 2
	rootfsNoPivot    = 1
	rootfsExec       = 2
	rootfsChunk      = 65530 // largest string in one attribute
	maxOffsetSecs    = 4611686018
)

type writer struct{ buf bytes.Buffer }

func (w *writer) u16(v uint16) { _ = binary.Write(&w.buf, binary.LittleEndian, v) }

func (w *writer) int32(kind uint16, v uint32) {
	w.u16(8)
	w.u16(kind)
	_ = binary.Write(&w.buf, binary.LittleEndian, v)
}

func (w *writer) boolean(kind uint16, v bool) {
	var n uint32
	if v {
		n = 1
	}
	w.int32(kind, n)
}

// bytes writes runc's Bytemsg: value, one NUL, zero padding to 4 bytes.
func (w *writer) bytes(name string, kind uint16, v []byte) error {
	if bytes.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("nsboot: %s contains a NUL byte", name)
	}
	n := 4 + len(v) + 1
	if n > 0xffff {
		return fmt.Errorf("nsboot: %s is %d bytes, above the 65535-byte attribute limit", name, n)
	}
	w.u16(uint16(n))
	w.u16(kind)
	w.buf.Write(v)
	w.buf.WriteByte(0)
	for ; n%4 != 0; n++ {
		w.buf.WriteByte(0)
	}
	return nil
}

func mapText(name string, m []IDMap) ([]byte, error) {
	var b strings.Builder
	for i, r := range m {
		if r.Count == 0 || uint64(r.Inside)+uint64(r.Count) > 0xffffffff || uint64(r.Outside)+uint64(r.Count) > 0xffffffff {
			return nil, fmt.Errorf("nsboot: %s line %d (%d %d %d) is not a valid range", name, i+1, r.Inside, r.Outside, r.Count)
		}
		fmt.Fprintf(&b, "%d %d %d\n", r.Inside, r.Outside, r.Count)
	}
	if len(m) > 340 {
		return nil, fmt.Errorf("nsboot: %s has %d lines, the kernel accepts at most 340", name, len(m))
	}
	return []byte(b.String()), nil
}

func offsetsText(offs []TimeOffset) ([]byte, error) {
	var b strings.Builder
	seen := map[string]bool{}
	for i, o := range offs {
		if o.Clock != "monotonic" && o.Clock != "boottime" {
			return nil, fmt.Errorf("nsboot: TimeOffsets[%d]: unknown clock %q (monotonic or boottime)", i, o.Clock)
		}
		if seen[o.Clock] {
			return nil, fmt.Errorf("nsboot: TimeOffsets[%d]: clock %s given twice", i, o.Clock)
		}
		seen[o.Clock] = true
		if o.Nsecs < 0 || o.Nsecs >= 1000000000 {
			return nil, fmt.Errorf("nsboot: TimeOffsets[%d]: nsecs %d outside 0..999999999", i, o.Nsecs)
		}
		if o.Secs > maxOffsetSecs || o.Secs < -maxOffsetSecs {
			return nil, fmt.Errorf("nsboot: TimeOffsets[%d]: secs %d outside +-%d", i, o.Secs, maxOffsetSecs)
		}
		fmt.Fprintf(&b, "%s %d %d\n", o.Clock, o.Secs, o.Nsecs)
	}
	return []byte(b.String()), nil
}

// hostEndian is binary.LittleEndian on every platform runc supports that
// nsboot builds for (x86_64, aarch64); the message is host-endian.
func init() {
	var x uint16 = 1
	if (*[2]byte)(unsafe.Pointer(&x))[0] != 1 {
		panic("nsboot: big-endian hosts are not supported by the Go encoder")
	}
}

// Encode returns the bootstrap message in c.Dialect (sequence 1), byte for
// byte what nsboot's Rust encoder (nsboot_msg_encode) writes.
func (c *Config) Encode() ([]byte, error) {
	if c.Dialect != Runc11 && c.Dialect != Runc12 {
		return nil, fmt.Errorf("nsboot: unknown dialect %d", c.Dialect)
	}
	var offsets []byte
	if len(c.TimeOffsets) > 0 {
		var err error
		if offsets, err = offsetsText(c.TimeOffsets); err != nil {
			return nil, err
		}
	}
	var w writer
	w.buf.Write(make([]byte, 4)) // length, patched below
	w.u16(initMsg)
	w.u16(nlmFRequest)
	_ = binary.Write(&w.buf, binary.LittleEndian, uint32(1)) // seq
	_ = binary.Write(&w.buf, binary.LittleEndian, uint32(0)) // pid

	var flags uint32
	for _, n := range c.Create {
		f := n.CloneFlag()
		if f == 0 {
			return nil, fmt.Errorf("nsboot: unknown namespace %q", string(n))
		}
		flags |= f
	}
	w.int32(attrCloneFlags, flags)

	if len(c.Join) > 0 {
		parts := make([]string, 0, len(c.Join))
		for i, j := range c.Join {
			if j.Type.CloneFlag() == 0 {
				return nil, fmt.Errorf("nsboot: Join[%d]: unknown namespace %q", i, string(j.Type))
			}
			if j.Path == "" || strings.ContainsAny(j.Path, ",\x00") {
				return nil, fmt.Errorf("nsboot: Join[%d]: path %q is empty or contains ',' or NUL", i, j.Path)
			}
			parts = append(parts, string(j.Type)+":"+j.Path)
		}
		if err := w.bytes("NS_PATHS", attrNsPaths, []byte(strings.Join(parts, ","))); err != nil {
			return nil, err
		}
	}
	if c.UIDMapHelper != "" {
		if err := w.bytes("UIDMAPPATH", attrUIDMapPath, []byte(c.UIDMapHelper)); err != nil {
			return nil, err
		}
	}
	for _, m := range []struct {
		name string
		kind uint16
		ids  []IDMap
	}{{"UIDMap", attrUIDMap, c.UIDMap}, {"GIDMap", attrGIDMap, c.GIDMap}} {
		if m.ids == nil {
			continue
		}
		if len(m.ids) == 0 {
			return nil, fmt.Errorf("nsboot: %s is empty (use nil for none)", m.name)
		}
		text, err := mapText(m.name, m.ids)
		if err != nil {
			return nil, err
		}
		if err := w.bytes(m.name, m.kind, text); err != nil {
			return nil, err
		}
	}
	if c.GIDMapHelper != "" {
		if err := w.bytes("GIDMAPPATH", attrGIDMapPath, []byte(c.GIDMapHelper)); err != nil {
			return nil, err
		}
	}
	if c.SetGroups {
		w.boolean(attrSetgroup, true)
	}
	if c.OOMScoreAdj != nil {
		v := *c.OOMScoreAdj
		if v < -1000 || v > 1000 {
			return nil, fmt.Errorf("nsboot: OOMScoreAdj %d is outside -1000..1000", v)
		}
		if err := w.bytes("OOM_SCORE_ADJ", attrOOMScoreAdj, []byte(strconv.Itoa(v))); err != nil {
			return nil, err
		}
	}
	w.boolean(attrRootlessEUID, c.Rootless)
	if c.Dialect == Runc12 && offsets != nil {
		if err := w.bytes("TIMENSOFFSET", attrTimensOffset, offsets); err != nil {
			return nil, err
		}
	}
	if c.RootfsConfig != nil {
		// Over one attribute's 65530 bytes the config goes in consecutive
		// chunks, which the bootstrap concatenates.
		rest := c.RootfsConfig
		for first := true; first || len(rest) > 0; first = false {
			n := len(rest)
			if n > rootfsChunk {
				n = rootfsChunk
			}
			if err := w.bytes("RootfsConfig", attrRootfsConfig, rest[:n]); err != nil {
				return nil, err
			}
			rest = rest[n:]
		}
	}
	if c.RootfsBundle != "" {
		if err := w.bytes("RootfsBundle", attrRootfsBundle, []byte(c.RootfsBundle)); err != nil {
			return nil, err
		}
	}
	if flags := rootfsFlags(c); flags != 0 {
		w.int32(attrRootfsFlags, flags)
	}
	if c.Pidfds || c.ErrorRecords {
		var f uint32
		if c.Pidfds {
			f |= callerPidfds
		}
		if c.ErrorRecords {
			f |= callerErrors
		}
		w.int32(attrCallerFlags, f)
	}
	if c.Dialect == Runc11 && offsets != nil {
		if err := w.bytes("NSBOOT_TIMENS_OFFSETS", attrNsbootTimens, offsets); err != nil {
			return nil, err
		}
	}
	out := w.buf.Bytes()
	if len(out) > 4<<20 {
		return nil, errors.New("nsboot: message above the 4 MiB cap")
	}
	binary.LittleEndian.PutUint32(out[:4], uint32(len(out)))
	return out, nil
}

// rootfsFlags is the NSBOOT_ROOTFS_FLAGS value of c (0: not sent).
func rootfsFlags(c *Config) uint32 {
	var f uint32
	if c.NoPivot {
		f |= rootfsNoPivot
	}
	if c.Exec {
		f |= rootfsExec
	}
	return f
}
