/*
 * clocks: print CLOCK_MONOTONIC and CLOCK_BOOTTIME as "SECS.NSECS SECS.NSECS"
 * (what a time namespace offsets), for the time namespace tests.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <time.h>

int main(void)
{
	struct timespec m, b;
	if (clock_gettime(CLOCK_MONOTONIC, &m) || clock_gettime(CLOCK_BOOTTIME, &b)) {
		perror("clocks: clock_gettime");
		return 1;
	}
	printf("%lld.%09ld %lld.%09ld\n", (long long)m.tv_sec, m.tv_nsec, (long long)b.tv_sec, b.tv_nsec);
	return 0;
}
