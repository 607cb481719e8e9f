/*
 * probe: a host program that links libnsboot and nothing else of ours.
 * When started with _LIBCONTAINER_INITPIPE, the library's ELF constructor
 * runs the bootstrap before main; main then runs in stage-2, inside the
 * namespaces, and executes argv[1..] there (the test's checks).
 * Without arguments it prints "probe-main" and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "nsboot.h"

int main(int argc, char **argv)
{
	/* Reference the library so the linker keeps it (and its constructor). */
	if (nsboot_version() == NULL)
		return 2;
	/* CVE-2019-5736 check: can the running binary be opened for writing? */
	if (getenv("NSBOOT_PROBE_EXE_CHECK")) {
		int fd = open("/proc/self/exe", O_WRONLY | O_CLOEXEC);
		int writable = fd >= 0;
		if (fd >= 0)
			close(fd);
		/* Immutable for good (also once this process is gone, the
		 * CVE-2019-5736 reopen trick): a read-only mount or a sealed memfd. */
		struct statvfs sv;
		int rdonly = statvfs("/proc/self/exe", &sv) == 0 && (sv.f_flag & ST_RDONLY);
		fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		int seals = fd >= 0 ? fcntl(fd, F_GET_SEALS) : -1;
		if (fd >= 0)
			close(fd);
		int sealed = seals >= 0 && (seals & (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK)) ==
						   (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK);
		printf("exe: writable=%d rdonly-mount=%d sealed=%d\n", writable, rdonly, sealed);
		fflush(stdout);
	}
	/* fd hygiene (CVE-2024-21626 class): every fd this process holds when
	 * main starts, close-on-exec ones included, as "fd N -> TARGET". */
	if (getenv("NSBOOT_PROBE_FDS")) {
		DIR *d = opendir("/proc/self/fd");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			char path[PATH_MAX], target[PATH_MAX];
			if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
				continue;
			snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
			ssize_t n = readlink(path, target, sizeof(target) - 1);
			target[n < 0 ? 0 : n] = '\0';
			int fl = fcntl(atoi(e->d_name), F_GETFD);
			printf("fd %s -> %s%s\n", e->d_name, target, fl >= 0 && (fl & FD_CLOEXEC) ? " (cloexec)" : "");
		}
		if (d)
			closedir(d);
		else
			perror("probe: opendir /proc/self/fd");
		fflush(stdout);
	}
	/* CVE-2019-5736 from the other side: another process of the container
	 * (this one, after its own bootstrap) attacks the /proc/PID/exe of a
	 * process named runc:[2:INIT] that joined the container: open for
	 * writing while it runs, and the O_PATH-then-reopen trick once it is
	 * gone. Prints "attack: <step> <errno name or ok>". */
	if (getenv("NSBOOT_PROBE_ATTACK")) {
		int victim = 0;
		for (int tries = 0; tries < 500 && !victim; tries++) {
			DIR *d = opendir("/proc");
			struct dirent *e;
			while (d && (e = readdir(d))) {
				int p = atoi(e->d_name);
				char path[64], comm[64] = "";
				if (p <= 0 || p == getpid())
					continue;
				snprintf(path, sizeof(path), "/proc/%d/comm", p);
				FILE *f = fopen(path, "r");
				if (f) {
					if (!fgets(comm, sizeof(comm), f))
						comm[0] = 0;
					fclose(f);
				}
				if (strcmp(comm, "runc:[2:INIT]\n") == 0)
					victim = p;
			}
			if (d)
				closedir(d);
			if (!victim)
				usleep(10000);
		}
		if (!victim) {
			puts("attack: no victim");
			return 3;
		}
		char exe[64], again[64];
		snprintf(exe, sizeof(exe), "/proc/%d/exe", victim);
		/* ELF files start with 0x7f: writing it at offset 0 changes no
		 * byte, but is a real write if it succeeds. */
		int fd = open(exe, O_WRONLY | O_CLOEXEC);
		int w = fd >= 0 ? (int)pwrite(fd, "\x7f", 1, 0) : -1;
		printf("attack: running-write %s\n", w == 1 ? "ok" : strerrorname_np(errno));
		if (fd >= 0)
			close(fd);
		int path_fd = open(exe, O_PATH | O_CLOEXEC);
		printf("attack: open-path %s\n", path_fd >= 0 ? "ok" : strerrorname_np(errno));
		for (int i = 0; i < 500 && kill(victim, 0) == 0; i++)
			usleep(10000);
		printf("attack: victim-gone %s\n", kill(victim, 0) == 0 ? "no" : "yes");
		if (path_fd >= 0) {
			snprintf(again, sizeof(again), "/proc/self/fd/%d", path_fd);
			fd = open(again, O_WRONLY | O_CLOEXEC);
			w = fd >= 0 ? (int)pwrite(fd, "\x7f", 1, 0) : -1;
			printf("attack: reopen-write %s\n", w == 1 ? "ok" : strerrorname_np(errno));
			if (fd >= 0)
				close(fd);
		}
		fflush(stdout);
		return 0;
	}
	if (getenv("NSBOOT_PROBE_SLEEP"))
		sleep((unsigned)atoi(getenv("NSBOOT_PROBE_SLEEP")));
	if (argc < 2) {
		puts("probe-main");
		return 0;
	}
	execvp(argv[1], argv + 1);
	perror("probe: execvp");
	return 127;
}
