// SPDX-License-Identifier: MIT
/*
 * Fixed-slot alloc+free pairs: libarena against the process's malloc.
 *
 * Measures nanoseconds per alloc+free pair of one size, best of several
 * repetitions, in one or more processes running the same loop at once
 * (each on its own heap, or each with its own arena_connect to the same
 * daemon).  The fixed-slot fast path (magazine pop and a release store;
 * one CAS and a push) has to be at least as fast as a thread-caching
 * malloc to be worth a shared region, and must not slow down when other
 * processes allocate from the same region.
 *
 * --alloc malloc times whatever malloc the process has: bench/run.sh runs
 * this binary plain (glibc) and with LD_PRELOAD=libjemalloc.so.2 or
 * libmimalloc.so.2.  The library that really provides malloc is found
 * with dladdr() and printed; --expect refuses to measure anything else.
 *
 * Patterns: pair (malloc, write a byte, free; arena_alloc, arena_unref),
 * window (keep W blocks live, free the oldest, allocate a new one), and
 * for the arena ptr (pair plus arena_ptr() and a byte written through it,
 * what a user of the block really does).
 *
 * Output: one "result key=value..." line on stdout; exit 0, or non-zero
 * with a message on stderr when anything failed.
 */
#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arena/arena.h>

#include "common.h"

#define MAX_PROCS 64
#define MAX_WINDOW 1024
#define CHUNK 65536 /* pairs per calibration step */

enum alloc_kind { ALLOC_ARENA, ALLOC_MALLOC };
enum pattern { PAT_PAIR, PAT_WINDOW, PAT_PTR };

struct opts {
	enum alloc_kind alloc;
	enum pattern pat;
	const char *expect;
	const char *socket;
	const char *label;
	size_t size;
	unsigned procs;
	unsigned reps;
	unsigned window;
	unsigned ms;	/* target milliseconds per repetition */
	uint64_t pairs; /* 0: calibrate */
	int pin;
};

/* Shared between the children: a barrier and the results. */
struct shared {
	_Atomic unsigned arrived;
	_Atomic unsigned phase;
	uint64_t n; /* pairs per repetition, the same for all */
	uint64_t pairs[MAX_PROCS];
	double best[MAX_PROCS];
};

struct worker {
	const struct opts *o;
	struct arena_client *c;
	unsigned char **p;
	arena_handle_t *h;
	uint64_t head;
};

/* Make the compiler believe p is used, so no malloc/free pair vanishes. */
#define HIDE(p) __asm__ volatile("" : : "r"(p) : "memory")

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_fixed: %s: %s\n", what, strerror(err));
	exit(1);
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void barrier(struct shared *sh, unsigned n)
{
	unsigned phase = atomic_load(&sh->phase);
	unsigned spins = 0;

	if (atomic_fetch_add(&sh->arrived, 1) + 1 == n) {
		atomic_store(&sh->arrived, 0);
		atomic_store(&sh->phase, phase + 1);
		return;
	}
	while (atomic_load(&sh->phase) == phase)
		if (++spins > 1000)
			sched_yield();
		else
			__builtin_ia32_pause();
}

static void malloc_pairs(struct worker *w, uint64_t n)
{
	size_t size = w->o->size;
	unsigned char *p;
	uint64_t i;

	for (i = 0; i < n; i++) {
		p = malloc(size);
		if (!p)
			die("malloc", ENOMEM);
		p[0] = (unsigned char)i;
		HIDE(p);
		free(p);
	}
}

/*
 * The ring index is a local and the window a power of two: a division or
 * a memory round trip per step would be timed too, and after the CAS in
 * arena_unref (a full barrier) it could not overlap with anything.
 */
static void malloc_window(struct worker *w, uint64_t n)
{
	size_t size = w->o->size;
	uint64_t i, mask = w->o->window - 1, head = w->head;
	unsigned char **slot;

	for (i = 0; i < n; i++) {
		slot = &w->p[head++ & mask];
		free(*slot);
		*slot = malloc(size);
		if (!*slot)
			die("malloc", ENOMEM);
		(*slot)[0] = (unsigned char)i;
		HIDE(*slot);
	}
	w->head = head;
}

static void arena_pairs(struct worker *w, uint64_t n)
{
	struct arena_client *c = w->c;
	size_t size = w->o->size;
	arena_handle_t h;
	uint64_t i;
	int err;

	for (i = 0; i < n; i++) {
		err = arena_alloc(c, ARENA_KIND_FIXED, size, &h);
		if (err)
			die("arena_alloc", -err);
		err = arena_unref(c, h);
		if (err)
			die("arena_unref", -err);
	}
}

static void arena_ptr_pairs(struct worker *w, uint64_t n)
{
	struct arena_client *c = w->c;
	size_t size = w->o->size;
	unsigned char *p;
	arena_handle_t h;
	uint64_t i;
	int err;

	for (i = 0; i < n; i++) {
		err = arena_alloc(c, ARENA_KIND_FIXED, size, &h);
		if (err)
			die("arena_alloc", -err);
		p = arena_ptr(c, h);
		if (!p)
			die("arena_ptr", EINVAL);
		p[0] = (unsigned char)i;
		HIDE(p);
		err = arena_unref(c, h);
		if (err)
			die("arena_unref", -err);
	}
}

static void arena_window(struct worker *w, uint64_t n)
{
	struct arena_client *c = w->c;
	size_t size = w->o->size;
	uint64_t i, mask = w->o->window - 1, head = w->head;
	arena_handle_t *slot;
	int err;

	for (i = 0; i < n; i++) {
		slot = &w->h[head++ & mask];
		if (*slot) {
			err = arena_unref(c, *slot);
			if (err)
				die("arena_unref", -err);
		}
		err = arena_alloc(c, ARENA_KIND_FIXED, size, slot);
		if (err)
			die("arena_alloc", -err);
	}
	w->head = head;
}

static void run_pairs(struct worker *w, uint64_t n)
{
	const struct opts *o = w->o;

	if (o->alloc == ALLOC_MALLOC)
		o->pat == PAT_WINDOW ? malloc_window(w, n) : malloc_pairs(w, n);
	else if (o->pat == PAT_WINDOW)
		arena_window(w, n);
	else if (o->pat == PAT_PTR)
		arena_ptr_pairs(w, n);
	else
		arena_pairs(w, n);
}

/*
 * Warm up for about a tenth of the target, then time as long again at
 * full speed; return the pairs per repetition.
 */
static uint64_t calibrate(struct worker *w)
{
	double t0 = now_ns(), t;
	uint64_t done = 0;

	do {
		run_pairs(w, CHUNK);
		t = now_ns() - t0;
	} while (t < w->o->ms * 1e5);
	t0 = now_ns();
	do {
		run_pairs(w, CHUNK);
		done += CHUNK;
		t = now_ns() - t0;
	} while (t < w->o->ms * 1e5);
	return (uint64_t)((double)done * (w->o->ms * 1e6) / t) / CHUNK * CHUNK +
	       CHUNK;
}

static void child(const struct opts *o, struct shared *sh, unsigned id)
{
	struct worker w = { .o = o };
	uint64_t n;
	double t0, t, best = 0;
	unsigned r, i;
	int err;

	if (o->pin)
		bench_pin_cpu(id);
	if (o->alloc == ALLOC_ARENA) {
		err = arena_connect(o->socket, &w.c);
		if (err)
			die("arena_connect", -err);
	}
	w.p = calloc(o->window, sizeof(*w.p));
	w.h = calloc(o->window, sizeof(*w.h));
	if (!w.p || !w.h)
		die("calloc", ENOMEM);

	barrier(sh, o->procs);
	sh->pairs[id] = o->pairs ? o->pairs : calibrate(&w);
	barrier(sh, o->procs);
	for (n = sh->pairs[0], i = 1; i < o->procs; i++)
		if (sh->pairs[i] < n)
			n = sh->pairs[i];
	sh->n = n;

	for (r = 0; r < o->reps; r++) {
		barrier(sh, o->procs);
		t0 = now_ns();
		run_pairs(&w, n);
		t = (now_ns() - t0) / (double)n;
		if (r == 0 || t < best)
			best = t;
	}
	sh->best[id] = best;
	barrier(sh, o->procs);
	arena_disconnect(w.c);
	exit(0);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_fixed --alloc arena|malloc [--size BYTES]\n"
		"       [--procs N] [--pattern pair|window|ptr] [--window W]\n"
		"       [--reps N] [--ms MS] [--pairs N] [--socket PATH]\n"
		"       [--expect SUBSTRING] [--label NAME] [--no-pin]\n"
		"W, live blocks in the window pattern, is a power of two\n");
	exit(64);
}

static unsigned long num(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi)
		usage();
	return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	const char *val;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--no-pin")) {
			o->pin = 0;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		val = argv[++i];
		if (!strcmp(argv[i - 1], "--alloc")) {
			if (!strcmp(val, "arena"))
				o->alloc = ALLOC_ARENA;
			else if (!strcmp(val, "malloc"))
				o->alloc = ALLOC_MALLOC;
			else
				usage();
		} else if (!strcmp(argv[i - 1], "--pattern")) {
			if (!strcmp(val, "pair"))
				o->pat = PAT_PAIR;
			else if (!strcmp(val, "window"))
				o->pat = PAT_WINDOW;
			else if (!strcmp(val, "ptr"))
				o->pat = PAT_PTR;
			else
				usage();
		} else if (!strcmp(argv[i - 1], "--size")) {
			o->size = num(val, 1, 1ul << 30);
		} else if (!strcmp(argv[i - 1], "--procs")) {
			o->procs = (unsigned)num(val, 1, MAX_PROCS);
		} else if (!strcmp(argv[i - 1], "--reps")) {
			o->reps = (unsigned)num(val, 1, 1000);
		} else if (!strcmp(argv[i - 1], "--window")) {
			o->window = (unsigned)num(val, 1, MAX_WINDOW);
			if (o->window & (o->window - 1))
				usage(); /* a power of two */
		} else if (!strcmp(argv[i - 1], "--ms")) {
			o->ms = (unsigned)num(val, 1, 60000);
		} else if (!strcmp(argv[i - 1], "--pairs")) {
			o->pairs = num(val, 1, 1ul << 40);
		} else if (!strcmp(argv[i - 1], "--socket")) {
			o->socket = val;
		} else if (!strcmp(argv[i - 1], "--expect")) {
			o->expect = val;
		} else if (!strcmp(argv[i - 1], "--label")) {
			o->label = val;
		} else {
			usage();
		}
	}
	if (o->pat == PAT_PTR && o->alloc != ALLOC_ARENA)
		usage();
}

int main(int argc, char **argv)
{
	struct opts o = { .alloc = ALLOC_MALLOC,
			  .size = 64,
			  .procs = 1,
			  .reps = 5,
			  .window = 32,
			  .ms = 300,
			  .pin = 1 };
	static const char *pats[] = { "pair", "window", "ptr" };
	const char *impl = "libarena";
	double sum = 0, lo = 0, hi = 0;
	struct shared *sh;
	int status, bad = 0;
	pid_t pid, pids[MAX_PROCS];
	unsigned i, k;

	parse(argc, argv, &o);
	if (o.alloc == ALLOC_MALLOC) {
		impl = bench_malloc_impl();
		if (o.expect && !strstr(impl, o.expect)) {
			fprintf(stderr, "bench_fixed: malloc is %s, not %s\n",
				impl, o.expect);
			return 1;
		}
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", errno);
	fflush(stdout);
	for (i = 0; i < o.procs; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork", errno);
		if (pids[i] == 0)
			child(&o, sh, i);
	}
	for (i = 0; i < o.procs; i++) {
		pid = wait(&status);
		if (pid < 0)
			die("wait", errno);
		if (WIFEXITED(status) && !WEXITSTATUS(status))
			continue;
		if (WIFSIGNALED(status) && !bad)
			fprintf(stderr,
				"bench_fixed: worker killed by signal %d\n",
				WTERMSIG(status));
		/* the others would wait for it at the next barrier */
		for (k = 0; !bad && k < o.procs; k++)
			if (pids[k] != pid)
				kill(pids[k], SIGKILL);
		bad = 1;
	}
	if (bad)
		return 1;
	for (i = 0; i < o.procs; i++) {
		sum += sh->best[i];
		if (i == 0 || sh->best[i] < lo)
			lo = sh->best[i];
		if (i == 0 || sh->best[i] > hi)
			hi = sh->best[i];
	}
	printf("result name=%s alloc=%s size=%zu procs=%u pattern=%s "
	       "window=%u pairs=%llu ns=%.3f min=%.3f max=%.3f impl=%s\n",
	       o.label ? o.label
		       : (o.alloc == ALLOC_ARENA ? "arena" : "malloc"),
	       o.alloc == ALLOC_ARENA ? "arena" : "malloc", o.size, o.procs,
	       pats[o.pat], o.pat == PAT_WINDOW ? o.window : 0,
	       (unsigned long long)sh->n, sum / o.procs, lo, hi, impl);
	return 0;
}
