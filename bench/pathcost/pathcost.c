// SPDX-License-Identifier: Apache-2.0
/* pathcost: what one syscall costs, timed in a tight loop on one CPU, with a
 * set of empty eBPF programs attached (or none; or, driven by pathcost.py,
 * with the agent running). The difference to the bare loop is the whole cost
 * the kernel charges per hit, which the programs' own run time (bpf_stats)
 * does not show.
 *
 *   pathcost [--attach SET --object empty.bpf.o] [--iterations N] [--repeats R]
 *            [--pause-ms P] [--cpu C] [--wait]
 *
 * SET is one of syscalls, raw_tp, tp_btf, kprobe, fentry: the programs of
 * empty.bpf.o whose names start with it. --wait: set everything up, print
 * "ready <pid>" and wait for a line on stdin before timing (so an agent can
 * start tracing this process first).
 *
 * Loops, each timed R times; the fastest run is reported (on a busy machine
 * the least disturbed one), and the median beside it:
 *   tcp      N times an HTTP/1 request and its response over a loopback TCP
 *            connection whose two ends this process holds: write, read,
 *            write, read; P ms pause after each timed run, so that an agent
 *            tracing this process reads its ring buffer empty in between
 *   pipe     PIPE_FACTOR x N times a write and a read of a pipe: I/O that is
 *            not a socket
 *   getppid  GETPPID_FACTOR x N times a syscall no capture path looks at
 * Output: one JSON object on stdout. Exit status 2 when SET cannot be loaded or
 * attached on this kernel ({"error": ...} says why), 1 on other failures. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

/* Most programs one set attaches (the syscalls set: 11 syscalls x 2). */
#define MAX_PROGRAMS 32
/* Timed runs of each loop at most. */
#define MAX_REPEATS 31
#define BUF_BYTES 4096
/* The cheaper loops run longer, so each timed run lasts about as long. */
#define PIPE_FACTOR 4
#define GETPPID_FACTOR 16

static const char REQUEST[] = "GET /pathcost HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pathcost\r\n\r\n";
static const char RESPONSE[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";

struct attached {
	struct bpf_object *obj;
	int count;
	int fds[MAX_PROGRAMS];
	char names[MAX_PROGRAMS][64];
};

static void die(const char *what)
{
	fprintf(stderr, "pathcost: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Reports a set the kernel does not offer, and exits 2. */
static void refuse(const char *set, const char *what, int err)
{
	printf("{\"set\":\"%s\",\"error\":\"%s: %s\"}\n", set, what, strerror(err < 0 ? -err : err));
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void attach_set(const char *set, const char *path, struct attached *out)
{
	libbpf_set_print(NULL);
	out->obj = bpf_object__open_file(path, NULL);
	if (!out->obj)
		refuse(set, "open", errno);
	struct bpf_program *prog;
	size_t len = strlen(set);
	bpf_object__for_each_program(prog, out->obj)
	{
		const char *name = bpf_program__name(prog);
		bool mine = strncmp(name, set, len) == 0 && name[len] == '_';
		bpf_program__set_autoload(prog, mine);
	}
	int err = bpf_object__load(out->obj);
	if (err)
		refuse(set, "load", err);
	bpf_object__for_each_program(prog, out->obj)
	{
		if (!bpf_program__autoload(prog))
			continue;
		if (out->count == MAX_PROGRAMS)
			refuse(set, "too many programs", E2BIG);
		struct bpf_link *link = bpf_program__attach(prog);
		if (!link)
			refuse(set, bpf_program__section_name(prog), errno);
		out->fds[out->count] = bpf_program__fd(prog);
		snprintf(out->names[out->count], sizeof(out->names[0]), "%s", bpf_program__name(prog));
		out->count++;
	}
	if (out->count == 0)
		refuse(set, "no program of this set in the object", ENOENT);
}

/* A connected loopback TCP pair: *client and *server. */
static void tcp_pair(int *client, int *server)
{
	int lst = socket(AF_INET, SOCK_STREAM, 0);
	if (lst < 0)
		die("socket");
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(addr);
	if (bind(lst, (struct sockaddr *)&addr, sizeof(addr)) || listen(lst, 1) ||
	    getsockname(lst, (struct sockaddr *)&addr, &alen))
		die("listen");
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&addr, sizeof(addr)))
		die("connect");
	*server = accept(lst, NULL, NULL);
	if (*server < 0)
		die("accept");
	int one = 1;
	setsockopt(*client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(lst);
}

static void must_move(ssize_t got, size_t want, const char *what)
{
	if (got != (ssize_t)want) {
		fprintf(stderr, "pathcost: %s moved %zd of %zu bytes\n", what, got, want);
		exit(1);
	}
}

/* Each returns the syscalls it made. */
static uint64_t loop_tcp(long n, int c, int s, char *buf)
{
	for (long i = 0; i < n; i++) {
		must_move(write(c, REQUEST, sizeof(REQUEST) - 1), sizeof(REQUEST) - 1, "request write");
		must_move(read(s, buf, BUF_BYTES), sizeof(REQUEST) - 1, "request read");
		must_move(write(s, RESPONSE, sizeof(RESPONSE) - 1), sizeof(RESPONSE) - 1, "response write");
		must_move(read(c, buf, BUF_BYTES), sizeof(RESPONSE) - 1, "response read");
	}
	return 4 * (uint64_t)n;
}

static uint64_t loop_pipe(long n, int w, int r, char *buf)
{
	for (long i = 0; i < n; i++) {
		must_move(write(w, REQUEST, sizeof(REQUEST) - 1), sizeof(REQUEST) - 1, "pipe write");
		must_move(read(r, buf, BUF_BYTES), sizeof(REQUEST) - 1, "pipe read");
	}
	return 2 * (uint64_t)n;
}

static uint64_t loop_getppid(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
	return (uint64_t)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *set = "none", *object = NULL;
	long iterations = 100000;
	int repeats = 7, cpu = -1, wait = 0, pause_ms = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--attach") && v)
			set = v, i++;
		else if (!strcmp(a, "--object") && v)
			object = v, i++;
		else if (!strcmp(a, "--iterations") && v)
			iterations = atol(v), i++;
		else if (!strcmp(a, "--repeats") && v)
			repeats = atoi(v), i++;
		else if (!strcmp(a, "--cpu") && v)
			cpu = atoi(v), i++;
		else if (!strcmp(a, "--pause-ms") && v)
			pause_ms = atoi(v), i++;
		else if (!strcmp(a, "--wait"))
			wait = 1;
		else {
			fprintf(stderr, "usage: pathcost [--attach SET --object FILE] [--iterations N] "
					"[--repeats R] [--pause-ms P] [--cpu C] [--wait]\n");
			return 1;
		}
	}
	if (repeats < 1 || repeats > MAX_REPEATS || iterations < 1) {
		fprintf(stderr, "pathcost: --repeats must be 1..%d and --iterations positive\n", MAX_REPEATS);
		return 1;
	}
	if (cpu >= 0) {
		cpu_set_t cpus;
		CPU_ZERO(&cpus);
		CPU_SET(cpu, &cpus);
		if (sched_setaffinity(0, sizeof(cpus), &cpus))
			die("sched_setaffinity");
	}
	struct attached att = { 0 };
	int stats_fd = -1;
	if (strcmp(set, "none")) {
		if (!object) {
			fprintf(stderr, "pathcost: --attach needs --object\n");
			return 1;
		}
		attach_set(set, object, &att);
		stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	}
	int c, s, p[2];
	tcp_pair(&c, &s);
	if (pipe(p))
		die("pipe");
	static char buf[BUF_BYTES];
	if (wait) {
		printf("ready %d\n", getpid());
		fflush(stdout);
		char line[16];
		if (!fgets(line, sizeof(line), stdin))
			die("waiting for the go line on stdin");
	}

	const char *loops[] = { "tcp", "pipe", "getppid" };
	double fastest[3], median[3];
	uint64_t calls[3] = { 0 };
	for (int l = 0; l < 3; l++) {
		double ns[MAX_REPEATS];
		/* One untimed round first: caches, and the capture's per-connection set-up. */
		for (int r = -1; r < repeats; r++) {
			uint64_t t0 = now_ns(), n;
			if (l == 0)
				n = loop_tcp(iterations, c, s, buf);
			else if (l == 1)
				n = loop_pipe(PIPE_FACTOR * iterations, p[1], p[0], buf);
			else
				n = loop_getppid(GETPPID_FACTOR * iterations);
			if (r >= 0) {
				ns[r] = (double)(now_ns() - t0) / n;
				calls[l] += n;
			}
			if (l == 0 && pause_ms > 0)
				usleep(pause_ms * 1000);
		}
		qsort(ns, repeats, sizeof(ns[0]), cmp_double);
		fastest[l] = ns[0];
		median[l] = ns[repeats / 2];
	}

	printf("{\"set\":\"%s\",\"iterations\":%ld,\"repeats\":%d,\"cpu\":%d,\"loops\":{", set, iterations,
	       repeats, cpu);
	for (int l = 0; l < 3; l++)
		printf("%s\"%s\":{\"ns_per_call\":%.1f,\"median_ns_per_call\":%.1f,\"calls\":%llu}", l ? "," : "",
		       loops[l], fastest[l], median[l], (unsigned long long)calls[l]);
	printf("},\"programs\":{");
	for (int i = 0; i < att.count; i++) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		bpf_obj_get_info_by_fd(att.fds[i], &info, &len);
		printf("%s\"%s\":{\"run_ns\":%llu,\"runs\":%llu}", i ? "," : "", att.names[i],
		       (unsigned long long)info.run_time_ns, (unsigned long long)info.run_cnt);
	}
	printf("}}\n");
	if (stats_fd >= 0)
		close(stats_fd);
	bpf_object__close(att.obj);
	return 0;
}
