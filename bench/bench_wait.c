// SPDX-License-Identifier: MIT
/*
 * bench_wait: the wake-up latency of a waiting allocation (issue 10).
 *
 * Two processes and an arena of one 64-byte slot.  In each round one of
 * them holds the slot and the other sleeps in arena_alloc_wait(); the
 * holder lets the waiter fall asleep (a short sleep of its own), reads
 * CLOCK_MONOTONIC into a shared page and frees the slot; the waiter reads
 * the clock as soon as arena_alloc_wait() returns.  The difference is one
 * wake-up: free, futex wake, scheduling, the waiter's try.  Then the roles
 * swap.  The baseline is the same hand-off with nothing but a futex word
 * in a shared page (store, FUTEX_WAKE; the waiter in FUTEX_WAIT), in the
 * same run, and a pipe (write one byte; the waiter in read()).  Prints
 * the median and the 99th percentile of each, and the ratios.
 *
 * BENCH_WAIT_N (default 2000) rounds per measurement.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arena/arena.h>

#define NAP_US 200 /* the holder's pause: the waiter is asleep by then */

static char dir[PATH_MAX - 64], sock[PATH_MAX], logpath[PATH_MAX];
static pid_t daemon_pid = -1;
static long rounds = 2000;

enum mode { M_ARENA, M_FUTEX, M_PIPE };

struct shared {
	uint64_t t_free; /* holder's clock at the free */
	uint32_t futex;	 /* baseline: bumped by each hand-off */
	uint32_t pad;
	uint64_t lat[2][1u << 16]; /* per side: ns of each wake-up */
	long n[2];
	int fail;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int daemon_start(const char *arenad)
{
	const char *tmp = getenv("TMPDIR");
	struct arena_client *c;
	int i, log;

	snprintf(dir, sizeof(dir), "%s/arena-wait.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(sock, sizeof(sock), "%s/arenad.sock", dir);
	snprintf(logpath, sizeof(logpath), "%s/arenad.log", dir);
	daemon_pid = fork();
	if (daemon_pid < 0)
		return -errno;
	if (daemon_pid == 0) {
		log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (log >= 0)
			dup2(log, 2);
		execl(arenad, arenad, "--size", "16M", "--fixed", "64:1",
		      "--socket", sock, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 100; i++) {
		if (arena_connect(sock, &c) == 0) {
			arena_disconnect(c);
			return 0;
		}
		usleep(50000);
	}
	return -ETIMEDOUT;
}

static void daemon_stop(void)
{
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	unlink(logpath);
	unlink(sock);
	rmdir(dir);
}

static void futex_wait(uint32_t *w, uint32_t v)
{
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == v)
		syscall(SYS_futex, w, FUTEX_WAIT, v, NULL, NULL, 0);
}

/* One side of the ping-pong; side 0 holds first. */
struct side {
	struct shared *sh;
	enum mode mode;
	int me;
	struct arena_client *c;
	arena_handle_t h;
	int rd, wr; /* pipe: mine to read, the other's to write */
	int holding;
};

/* The holder's half of round r: nap, stamp, hand over. */
static int give(struct side *s)
{
	uint32_t v;
	char b = 1;

	usleep(NAP_US);
	__atomic_store_n(&s->sh->t_free, now_ns(), __ATOMIC_RELEASE);
	if (s->mode == M_ARENA)
		return arena_unref(s->c, s->h);
	if (s->mode == M_PIPE)
		return write(s->wr, &b, 1) == 1 ? 0 : -EIO;
	v = __atomic_add_fetch(&s->sh->futex, 1, __ATOMIC_RELEASE);
	(void)v;
	syscall(SYS_futex, &s->sh->futex, FUTEX_WAKE, 1, NULL, NULL, 0);
	return 0;
}

/* The waiter's half: block until handed over, record the latency. */
static int take(struct side *s, uint32_t fv)
{
	uint64_t t;
	char b;
	int err = 0;

	if (s->mode == M_ARENA)
		err = arena_alloc_wait(s->c, ARENA_KIND_AUTO, 64, -1, &s->h);
	else if (s->mode == M_PIPE)
		err = read(s->rd, &b, 1) == 1 ? 0 : -EIO;
	else
		futex_wait(&s->sh->futex, fv);
	t = now_ns();
	if (err)
		return err;
	s->sh->lat[s->me][s->sh->n[s->me]++ & 0xffff] =
		t - __atomic_load_n(&s->sh->t_free, __ATOMIC_ACQUIRE);
	return 0;
}

static int play(struct side *s)
{
	long r;
	int err;

	if (s->mode == M_ARENA && !s->c && arena_connect(sock, &s->c))
		return 1;
	for (r = 0; r < rounds; r++) {
		if ((r & 1) == (long)s->me)
			err = give(s);
		else
			err = take(s, (uint32_t)r);
		if (err) {
			fprintf(stderr, "bench_wait: side %d round %ld: %s\n",
				s->me, r, strerror(-err));
			return 3;
		}
		s->holding = (r & 1) != (long)s->me;
	}
	if (s->mode == M_ARENA) {
		if (s->holding)
			arena_unref(s->c, s->h);
		arena_disconnect(s->c);
	}
	return 0;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Run one mode; median and p99 in ns, or -1. */
static int measure(struct shared *sh, enum mode mode, double *med, double *p99)
{
	static uint64_t all[2u << 16];
	struct side s[2] = { { sh, mode, 0, NULL, 0, -1, -1, 0 },
			     { sh, mode, 1, NULL, 0, -1, -1, 0 } };
	int p[2][2], st, n, k;
	pid_t pid;

	memset(sh, 0, sizeof(*sh));
	if (pipe(p[0]) || pipe(p[1]))
		return -1;
	s[0].rd = p[0][0], s[0].wr = p[1][1];
	s[1].rd = p[1][0], s[1].wr = p[0][1];
	/* side 0 holds the slot before side 1 may ask for it */
	if (mode == M_ARENA &&
	    (arena_connect(sock, &s[0].c) ||
	     arena_alloc(s[0].c, ARENA_KIND_AUTO, 64, &s[0].h)))
		return -1;
	pid = fork();
	if (pid == 0)
		_exit(play(&s[1]));
	k = play(&s[0]);
	waitpid(pid, &st, 0);
	close(p[0][0]), close(p[0][1]), close(p[1][0]), close(p[1][1]);
	if (k || !WIFEXITED(st) || WEXITSTATUS(st))
		return -1;
	n = 0;
	for (k = 0; k < 2; k++) {
		memcpy(all + n, sh->lat[k], (size_t)sh->n[k] * 8);
		n += (int)sh->n[k];
	}
	qsort(all, (size_t)n, 8, cmp);
	*med = (double)all[n / 2];
	*p99 = (double)all[(n * 99) / 100];
	return 0;
}

int main(int argc, char **argv)
{
	static const char *const names[] = { "arena_alloc_wait", "futex",
					     "pipe" };
	char def[PATH_MAX];
	const char *arenad = NULL, *e = getenv("BENCH_WAIT_N");
	double med[3], p99[3];
	struct shared *sh;
	int i, bad = 0;

	for (i = 1; i + 1 < argc; i += 2)
		if (!strcmp(argv[i], "--arenad"))
			arenad = argv[i + 1];
	if (!arenad) {
		snprintf(def, sizeof(def), "%s", argv[0]);
		strcpy(strrchr(def, '/') ? strrchr(def, '/') + 1 : def,
		       "../arenad");
		arenad = def;
	}
	if (e && atol(e) > 0 && atol(e) <= 65536)
		rounds = atol(e);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED || daemon_start(arenad)) {
		fprintf(stderr, "bench_wait: cannot start %s\n", arenad);
		daemon_stop();
		return 1;
	}
	for (i = 0; i < 3; i++)
		if (measure(sh, (enum mode)i, &med[i], &p99[i])) {
			fprintf(stderr, "bench_wait: %s failed\n", names[i]);
			bad = 1;
		}
	daemon_stop();
	if (bad)
		return 1;
	printf("Waiting allocation (issue 10): wake-up latency from the free "
	       "to the waiter's return, ns, %ld hand-offs\n",
	       rounds);
	printf("%-18s %10s %10s %12s %12s\n", "hand-off", "median", "p99",
	       "median/futex", "median/pipe");
	for (i = 0; i < 3; i++)
		printf("%-18s %10.0f %10.0f %11.2fx %11.2fx\n", names[i],
		       med[i], p99[i], med[i] / med[1], med[i] / med[2]);
	return 0;
}
