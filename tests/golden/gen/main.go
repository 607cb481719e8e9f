// Command gen writes the golden bootstrap messages for nsboot's wire
// tests, using runc's own encoder types (libcontainer.Int32msg, Bytemsg,
// Boolmsg) and vishvananda/netlink's NewNetlinkRequest, the way runc's
// bootstrapData and nsenter_test.go use them.
//
// Run in GOPATH mode against Debian's golang-github-opencontainers-runc-dev
// (runc 1.1.5):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run tests/golden/gen/main.go runc11 tests/golden/runc11
//	GO111MODULE=off GOPATH=/usr/share/gocode go run tests/golden/gen/main.go runc12 tests/golden/runc12
//
// runc >= 1.2 is not installed here. Its Int32msg/Bytemsg/Boolmsg are
// unchanged from 1.1; what changed is that 27290 carries TIMENSOFFSET
// (lines "%s %d %d\n" of clock, secs, nsecs; attribute present whenever
// the config's TimeOffsets map is non-nil, even empty) written after
// ROOTLESS_EUID, and MOUNT_SOURCES is gone. The runc12 mode builds that
// shape with the 1.1 types.
//
// Messages are host-endian: run it on a little-endian machine.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

type idRange struct{ inside, outside, count int }

// idMapText is the uid_map text runc sends: one "%d %d %d\n" per range.
func idMapText(m []idRange) []byte {
	var b strings.Builder
	for _, r := range m {
		fmt.Fprintf(&b, "%d %d %d\n", r.inside, r.outside, r.count)
	}
	return []byte(b.String())
}

// mountSources is the MOUNT_SOURCES value runc 1.1 builds: each entry
// (empty for a non-bind mount) followed by one NUL.
func mountSources(entries []string) []byte {
	var b []byte
	for _, e := range entries {
		b = append(b, e...)
		b = append(b, 0)
	}
	return b
}

// msg is one bootstrap message, with the fields bootstrapData looks at.
// Attributes are added in bootstrapData's order (runc 1.1.5,
// libcontainer/container_linux.go).
type msg struct {
	seq          uint32
	cloneFlags   uint32
	nsPaths      []string // already "type:path", in runc's join order
	uidHelper    string
	uidMap       []idRange
	gidMap       []idRange
	gidHelper    string
	setgroup     bool
	oom          *int
	rootless     bool
	mountSources []string // nil: attribute absent
	timeOffsets  *string  // runc >= 1.2 TIMENSOFFSET text; nil: absent
}

// timeNsOffsetAttr is runc >= 1.2's TimeOffsetsAttr (27290, the number
// runc 1.1 uses for MountSourcesAttr).
const timeNsOffsetAttr uint16 = 27290

func (m msg) serialize() []byte {
	r := nl.NewNetlinkRequest(int(libcontainer.InitMsg), 0)
	r.Seq = m.seq
	r.AddData(&libcontainer.Int32msg{Type: libcontainer.CloneFlagsAttr, Value: m.cloneFlags})
	if len(m.nsPaths) > 0 {
		r.AddData(&libcontainer.Bytemsg{Type: libcontainer.NsPathsAttr, Value: []byte(strings.Join(m.nsPaths, ","))})
	}
	if len(m.uidMap) > 0 {
		if m.uidHelper != "" {
			r.AddData(&libcontainer.Bytemsg{Type: libcontainer.UidmapPathAttr, Value: []byte(m.uidHelper)})
		}
		r.AddData(&libcontainer.Bytemsg{Type: libcontainer.UidmapAttr, Value: idMapText(m.uidMap)})
	}
	if len(m.gidMap) > 0 {
		r.AddData(&libcontainer.Bytemsg{Type: libcontainer.GidmapAttr, Value: idMapText(m.gidMap)})
		if m.gidHelper != "" {
			r.AddData(&libcontainer.Bytemsg{Type: libcontainer.GidmapPathAttr, Value: []byte(m.gidHelper)})
		}
		if m.setgroup {
			r.AddData(&libcontainer.Boolmsg{Type: libcontainer.SetgroupAttr, Value: true})
		}
	}
	if m.oom != nil {
		r.AddData(&libcontainer.Bytemsg{Type: libcontainer.OomScoreAdjAttr, Value: []byte(strconv.Itoa(*m.oom))})
	}
	r.AddData(&libcontainer.Boolmsg{Type: libcontainer.RootlessEUIDAttr, Value: m.rootless})
	if m.mountSources != nil {
		r.AddData(&libcontainer.Bytemsg{Type: libcontainer.MountSourcesAttr, Value: mountSources(m.mountSources)})
	}
	if m.timeOffsets != nil {
		r.AddData(&libcontainer.Bytemsg{Type: timeNsOffsetAttr, Value: []byte(*m.timeOffsets)})
	}
	return r.Serialize()
}

// nsenterTest is the message shape of runc's nsenter_test.go: only
// CLONE_FLAGS (CLONE_NEWNET) and NS_PATHS, nothing else.
func nsenterTest(paths []string) []byte {
	r := nl.NewNetlinkRequest(int(libcontainer.InitMsg), 0)
	r.Seq = 1
	r.AddData(&libcontainer.Int32msg{Type: libcontainer.CloneFlagsAttr, Value: uint32(unix.CLONE_NEWNET)})
	r.AddData(&libcontainer.Bytemsg{Type: libcontainer.NsPathsAttr, Value: []byte(strings.Join(paths, ","))})
	return r.Serialize()
}

func intp(i int) *int { return &i }

func strp(s string) *string { return &s }

// timeOffsetsText formats runc >= 1.2's TIMENSOFFSET value. runc ranges
// over a Go map (random order); here the order is fixed per file.
func timeOffsetsText(clocks []string, secs, nsecs []int64) string {
	var b strings.Builder
	for i, c := range clocks {
		fmt.Fprintf(&b, "%s %d %d\n", c, secs[i], nsecs[i])
	}
	return b.String()
}

const allNew = unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC | unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP

func runc12Files() map[string][]byte {
	return map[string][]byte{
		"minimal.bin": msg{seq: 1}.serialize(),
		// A new time namespace with both clocks offset.
		"timens.bin": msg{
			seq:         1,
			cloneFlags:  allNew | unix.CLONE_NEWTIME,
			oom:         intp(0),
			timeOffsets: strp(timeOffsetsText([]string{"monotonic", "boottime"}, []int64{86400, -3600}, []int64{0, 500000000})),
		}.serialize(),
		// Map order is random in runc: boottime may come first.
		"timens_boottime_first.bin": msg{
			seq:         1,
			cloneFlags:  unix.CLONE_NEWTIME,
			timeOffsets: strp(timeOffsetsText([]string{"boottime", "monotonic"}, []int64{1, 3}, []int64{2, 999999999})),
		}.serialize(),
		// TimeOffsets non-nil but empty: the attribute is a lone NUL.
		"timens_empty.bin": msg{
			seq:         1,
			cloneFlags:  unix.CLONE_NEWTIME,
			timeOffsets: strp(""),
		}.serialize(),
		// Joining a user namespace and others another tool made, plus a
		// time namespace (runc >= 1.2.6 then sends no TIMENSOFFSET), in
		// runc's order (configs.NamespaceTypes: user, ipc, uts, net, pid,
		// mnt, cgroup, time); no id maps when the user ns is joined.
		"join_user_net_uts.bin": msg{
			seq:        1,
			cloneFlags: unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC | unix.CLONE_NEWCGROUP,
			nsPaths: []string{
				"user:/proc/4242/ns/user",
				"uts:/proc/4242/ns/uts",
				"net:/var/run/netns/other",
				"time:/proc/4242/ns/time",
			},
			oom: intp(0),
		}.serialize(),
		// Rootless with helpers, user namespace, one clock.
		"rootless_timens.bin": msg{
			seq:         1,
			cloneFlags:  allNew | unix.CLONE_NEWUSER | unix.CLONE_NEWTIME,
			uidHelper:   "/usr/bin/newuidmap",
			uidMap:      []idRange{{0, 1000, 1}, {1, 100000, 65536}},
			gidMap:      []idRange{{0, 1000, 1}, {1, 100000, 65536}},
			gidHelper:   "/usr/bin/newgidmap",
			setgroup:    true,
			rootless:    true,
			timeOffsets: strp(timeOffsetsText([]string{"monotonic"}, []int64{-5}, []int64{1})),
		}.serialize(),
	}
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "runc11" && os.Args[1] != "runc12") {
		fmt.Fprintln(os.Stderr, "usage: gen runc11|runc12 OUTDIR")
		os.Exit(2)
	}
	out := os.Args[2]
	files := runc11Files()
	if os.Args[1] == "runc12" {
		files = runc12Files()
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func runc11Files() map[string][]byte {
	return map[string][]byte{
		// runc exec-like: nothing to create, nothing else set.
		"minimal.bin": msg{seq: 1}.serialize(),
		// runc run as root, no user namespace.
		"root_run.bin": msg{seq: 1, cloneFlags: allNew, oom: intp(0)}.serialize(),
		// Every runc 1.1 attribute, mount sources with empty entries
		// (non-bind mounts) first, between and last.
		"all_attrs.bin": msg{
			seq:          1,
			cloneFlags:   allNew | unix.CLONE_NEWUSER,
			nsPaths:      []string{"net:/var/run/netns/ctr1"},
			uidHelper:    "/usr/bin/newuidmap",
			uidMap:       []idRange{{0, 100000, 65536}},
			gidMap:       []idRange{{0, 100000, 65536}},
			gidHelper:    "/usr/bin/newgidmap",
			setgroup:     true,
			oom:          intp(-1000),
			rootless:     false,
			mountSources: []string{"", "/srv/data", "", "", "/etc/resolv.conf", ""},
		}.serialize(),
		// Only empty mount sources (no bind mount has a source to open).
		"mount_sources_empty.bin": msg{
			seq:          1,
			cloneFlags:   unix.CLONE_NEWNS | unix.CLONE_NEWUSER,
			uidMap:       []idRange{{0, 0, 4294967295}},
			gidMap:       []idRange{{0, 0, 4294967295}},
			mountSources: []string{"", ""},
		}.serialize(),
		// Rootless (runc run as an unprivileged user) with the mapping
		// helpers and multi-range maps; SETGROUP true, OOM positive.
		"rootless_helpers.bin": msg{
			seq:        1,
			cloneFlags: allNew | unix.CLONE_NEWUSER,
			uidHelper:  "/usr/bin/newuidmap",
			uidMap:     []idRange{{0, 1000, 1}, {1, 100000, 65536}},
			gidMap:     []idRange{{0, 1000, 1}, {1, 100000, 65536}},
			gidHelper:  "/usr/bin/newgidmap",
			setgroup:   true,
			oom:        intp(500),
			rootless:   true,
		}.serialize(),
		// Rootless without helpers: maps written directly, no SETGROUP.
		"rootless_plain.bin": msg{
			seq:        1,
			cloneFlags: allNew | unix.CLONE_NEWUSER,
			uidMap:     []idRange{{0, 1000, 1}},
			gidMap:     []idRange{{0, 1000, 1}},
			rootless:   true,
		}.serialize(),
		// runc exec into a running container: join every namespace, in
		// runc's order (user first), create nothing; a later request (seq 7).
		"join_all.bin": msg{
			seq: 7,
			nsPaths: []string{
				"user:/proc/4242/ns/user", "ipc:/proc/4242/ns/ipc", "uts:/proc/4242/ns/uts",
				"net:/proc/4242/ns/net", "pid:/proc/4242/ns/pid", "mnt:/proc/4242/ns/mnt",
				"cgroup:/proc/4242/ns/cgroup",
			},
			oom: intp(-17),
		}.serialize(),
		// nsenter_test.go messages (the test's own pid replaced by 4242).
		"nsenter_invalid_paths.bin":       nsenterTest([]string{fmt.Sprintf("pid:/proc/%d/ns/pid", -1)}),
		"nsenter_incorrect_path_type.bin": nsenterTest([]string{fmt.Sprintf("net:/proc/%d/ns/pid", 4242)}),
		"nsenter_child_logging.bin":       nsenterTest([]string{fmt.Sprintf("pid:/proc/%d/ns/pid", 4242)}),
	}
}
