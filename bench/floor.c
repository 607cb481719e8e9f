/*
 * floor: the raw-syscall floor of a bootstrap. The same process shape as
 * nsboot/runc (exec'd binary -> child -> grandchild in the new PID
 * namespace), the same unshare/map sequence, no protocol: no message, no
 * sync messages, no pid JSON, no logging, no CVE-2019-5736 check.
 *
 *   floor FLAGS [UIDMAP]     FLAGS: hex CLONE_NEW* set; UIDMAP: "0 100000 65536"
 *
 * The child unshares the user namespace (if asked) and the parent writes
 * its uid/gid maps from outside (as stage-0 does), then the child unshares
 * the rest and forks the grandchild, which exits at once.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) {
		perror(path);
		_exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	unsigned long flags = strtoul(argv[1], NULL, 16);
	const char *map = argc > 2 ? argv[2] : NULL;
	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		return 1;
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0)
		return 1;
	pid_t child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		char c = 0;
		if (flags & CLONE_NEWUSER) {
			if (unshare(CLONE_NEWUSER) < 0)
				_exit(1);
			if (write(sync[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(1);
			if (setresuid(0, 0, 0) < 0)
				_exit(1);
		}
		if (unshare(flags & ~CLONE_NEWUSER) < 0)
			_exit(1);
		pid_t g = fork();
		if (g < 0)
			_exit(1);
		if (g == 0)
			_exit(0);
		waitpid(g, NULL, 0);
		_exit(0);
	}
	if (flags & CLONE_NEWUSER) {
		char c, path[64];
		if (read(sync[0], &c, 1) != 1)
			return 1;
		snprintf(path, sizeof(path), "/proc/%d/uid_map", child);
		write_file(path, map);
		snprintf(path, sizeof(path), "/proc/%d/gid_map", child);
		write_file(path, map);
		if (write(go[1], &c, 1) != 1)
			return 1;
	}
	int st;
	waitpid(child, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
