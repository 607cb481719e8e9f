/*
 * spawn: a C caller of the nsboot C API. Builds a bootstrap message with
 * the nsboot_msg_* builder, starts a program with nsboot_spawn, reports the
 * pids, reaps stage-1, waits for stage-2 and exits with its status.
 *
 *   spawn [--ns LIST] [--join TYPE:PATH]... [--uid-map TEXT] [--gid-map TEXT]
 *         [--uidmap-helper PATH] [--gidmap-helper PATH] [--setgroup]
 *         [--rootless] [--oom N] [--time TEXT] [--dialect 1.1|1.2]
 *         [--sealed] [--log FILE] [--rootfs CONFIG.JSON [--bundle DIR]
 *         [--no-pivot] [--exec]] [--errors] [--seccomp-deny unshare|clone3]
 *         -- PROGRAM [ARG...]
 *
 * --errors asks for the stages' structured errors (NSBOOT_CALLER_ERROR_RECORD)
 * and prints them on a failure as one line
 * "spawn: record stage=N step=... syscall=... errno=N path=... cause=... hint=...".
 * --explain prints the dry-run plan of the message (nsboot_plan_explain)
 * and exits; --features prints nsboot_features() and exits.
 * --seccomp-deny installs a seccomp filter (inherited by the bootstrap)
 * making that system call fail with EPERM: a host seccomp profile.
 *
 * --exec: NSBOOT_ROOTFS_EXEC, stage-2 applies the config's process
 * (user, capabilities, seccomp, ...) and execs its process.args instead
 * of returning into PROGRAM.
 *
 * LIST is a comma-separated list of namespace names. Map TEXT uses ';'
 * between lines. Exit: the program's status (128+N for a signal), or 125
 * with the nsboot error on stderr when the bootstrap fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "nsboot.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

/* A filter: `nr` fails with EPERM, everything else is allowed. */
static void deny_syscall(long nr)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("spawn: seccomp");
		exit(125);
	}
}

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static unsigned flag_of(const char *name)
{
	static const struct { const char *n; unsigned f; } t[] = {
		{ "cgroup", CLONE_NEWCGROUP }, { "ipc", CLONE_NEWIPC }, { "mnt", CLONE_NEWNS },
		{ "net", CLONE_NEWNET }, { "pid", CLONE_NEWPID }, { "user", CLONE_NEWUSER },
		{ "uts", CLONE_NEWUTS }, { "time", CLONE_NEWTIME },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].n, name) == 0)
			return t[i].f;
	fprintf(stderr, "spawn: unknown namespace %s\n", name);
	exit(125);
}

static char *lines(const char *s)
{
	char *d = strdup(s);
	for (char *p = d; *p; p++)
		if (*p == ';')
			*p = '\n';
	return d;
}

static int check(nsboot_status st, nsboot_error **errp, const char *what)
{
	nsboot_error *err = *errp;
	if (st == NSBOOT_STATUS_OK)
		return 0;
	if (nsboot_error_stage(err) >= 0) {
#define S(x) ((x) ? (x) : "-")
		fprintf(stderr, "spawn: record stage=%d step=%s syscall=%s errno=%d path=%s cause=%s hint=%s\n",
			nsboot_error_stage(err), S(nsboot_error_step(err)), S(nsboot_error_syscall(err)),
			nsboot_error_errno(err), S(nsboot_error_path(err)), S(nsboot_error_cause(err)),
			S(nsboot_error_hint(err)));
#undef S
	}
	fprintf(stderr, "spawn: %s: %s (status %d, errno %d)\n", what, nsboot_error_message(err), (int)st,
		nsboot_error_errno(err));
	nsboot_error_free(err);
	exit(125);
}

int main(int argc, char **argv)
{
	nsboot_msg *msg = nsboot_msg_new();
	nsboot_error *err = NULL;
	int dialect = NSBOOT_DIALECT_RUNC_1_1, sealed = 0, logfd = -1, i;
	unsigned flags = 0, rootfs_flags = 0;
	long deny = -1;
	int explain = 0;
	const char *rootfs = NULL, *bundle = NULL;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--ns") == 0 && v) {
			char *list = strdup(v), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
				flags |= flag_of(t);
			free(list);
			i++;
		} else if (strcmp(a, "--join") == 0 && v) {
			char *d = strdup(v), *colon = strchr(d, ':');
			if (!colon) {
				fprintf(stderr, "spawn: --join needs TYPE:PATH\n");
				return 125;
			}
			*colon = '\0';
			check(nsboot_msg_add_ns_path(msg, d, colon + 1, &err), &err, "add_ns_path");
			free(d);
			i++;
		} else if (strcmp(a, "--uid-map") == 0 && v) {
			char *text = lines(v);
			check(nsboot_msg_set_uid_map(msg, text, &err), &err, "uid map");
			free(text);
			i++;
		} else if (strcmp(a, "--gid-map") == 0 && v) {
			char *text = lines(v);
			check(nsboot_msg_set_gid_map(msg, text, &err), &err, "gid map");
			free(text);
			i++;
		} else if (strcmp(a, "--uidmap-helper") == 0 && v) {
			check(nsboot_msg_set_uidmap_helper(msg, v, &err), &err, "uidmap helper");
			i++;
		} else if (strcmp(a, "--gidmap-helper") == 0 && v) {
			check(nsboot_msg_set_gidmap_helper(msg, v, &err), &err, "gidmap helper");
			i++;
		} else if (strcmp(a, "--setgroup") == 0) {
			nsboot_msg_set_setgroup(msg, true);
		} else if (strcmp(a, "--rootless") == 0) {
			nsboot_msg_set_rootless(msg, true);
		} else if (strcmp(a, "--oom") == 0 && v) {
			check(nsboot_msg_set_oom_score_adj(msg, atoi(v), &err), &err, "oom_score_adj");
			i++;
		} else if (strcmp(a, "--time") == 0 && v) {
			char *text = lines(v);
			check(nsboot_msg_set_time_offsets(msg, text, &err), &err, "time offsets");
			free(text);
			i++;
		} else if (strcmp(a, "--dialect") == 0 && v) {
			dialect = strcmp(v, "1.2") == 0 ? NSBOOT_DIALECT_RUNC_1_2 : NSBOOT_DIALECT_RUNC_1_1;
			i++;
		} else if (strcmp(a, "--rootfs") == 0 && v) {
			rootfs = v;
			i++;
		} else if (strcmp(a, "--bundle") == 0 && v) {
			bundle = v;
			i++;
		} else if (strcmp(a, "--no-pivot") == 0) {
			rootfs_flags |= NSBOOT_ROOTFS_NO_PIVOT;
		} else if (strcmp(a, "--explain") == 0) {
			explain = 1;
		} else if (strcmp(a, "--features") == 0) {
			static char fb[65536];
			size_t n = 0;
			check(nsboot_features(fb, sizeof fb, &n, &err), &err, "features");
			puts(fb);
			return 0;
		} else if (strcmp(a, "--errors") == 0) {
			check(nsboot_msg_set_caller_flags(msg, NSBOOT_CALLER_ERROR_RECORD, &err), &err, "caller flags");
		} else if (strcmp(a, "--seccomp-deny") == 0 && v) {
			deny = strcmp(v, "clone3") == 0 ? SYS_clone3 : SYS_unshare;
			i++;
		} else if (strcmp(a, "--exec") == 0) {
			rootfs_flags |= NSBOOT_ROOTFS_EXEC;
		} else if (strcmp(a, "--sealed") == 0) {
			sealed = 1;
		} else if (strcmp(a, "--log") == 0 && v) {
			logfd = open(v, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (logfd < 0) {
				perror("spawn: open log");
				return 125;
			}
			i++;
		} else {
			fprintf(stderr, "spawn: bad argument %s\n", a);
			return 125;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "spawn: no program\n");
		return 125;
	}
	check(nsboot_msg_set_clone_flags(msg, flags, &err), &err, "clone flags");
	if (rootfs) {
		static char buf[1 << 20];
		FILE *f = fopen(rootfs, "r");
		if (!f) {
			perror("spawn: open rootfs config");
			return 125;
		}
		size_t n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		check(nsboot_msg_set_rootfs_config(msg, (const uint8_t *)buf, n, bundle, rootfs_flags, &err), &err,
		      "rootfs config");
	}

	if (explain) {
		static uint8_t mb[1 << 20];
		static char text[1 << 16];
		size_t n = 0, tn = 0;
		check(nsboot_msg_encode(msg, dialect, mb, sizeof mb, &n, &err), &err, "encode");
		check(nsboot_plan_explain(mb, n, dialect, text, sizeof text, &tn, &err), &err, "explain");
		fputs(text, stdout);
		return 0;
	}
	if (deny >= 0)
		deny_syscall(deny);
	nsboot_sealed_exe *exe = NULL;
	if (sealed)
		check(nsboot_sealed_exe_new(argv[i], &exe, &err), &err, "seal");

	nsboot_spawned out;
	check(nsboot_spawn(exe, argv[i], (const char *const *)(argv + i), NULL, msg, dialect, logfd, &out, &err), &err,
	      "bootstrap");
	nsboot_msg_free(msg);
	nsboot_sealed_exe_free(exe);
	fprintf(stderr, "spawn: stage1_pid=%d stage2_pid=%d\n", out.stage1_pid, out.stage2_pid);
	waitpid(out.stage1_pid, NULL, 0);
	int status;
	while (waitpid(out.stage2_pid, &status, 0) < 0)
		if (errno != EINTR) {
			perror("spawn: waitpid");
			return 125;
		}
	close(out.init_fd);
	if (logfd >= 0)
		close(logfd);
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}
