// SPDX-License-Identifier: MIT
/*
 * Zero-copy sends against send(): sender CPU time per GiB and throughput.
 *
 * The same blocks go out with send() from their mapped address, with
 * arena_zc_send() (a system call per send, like send()) and with
 * arena_zc_queue() and a flush per 16 (one system call per 16 sends; UDP
 * also gets sendmmsg() of 16, its copying counterpart), for blocks of
 * 4 KiB, 64 KiB and 1 MiB, in one run:
 *
 *   tcp-lo   loopback TCP to a receiver process.  Loopback hands the
 *            pages to a local socket, so the kernel copies anyway: the
 *            results say so (ARENA_ZC_COPIED): zero-copy costs more than it saves.
 *   udp-dummy (root only) UDP into a dummy interface, or udp-ifb into
 *            an ifb where the kernel has no dummy driver (both drop what
 *            they transmit, without a copy), inside a private namespace
 *            (unshare(CLONE_NEWNET) in a child: it vanishes with the
 *            child, nothing to clean up).  Datagrams are at most 63 KiB
 *            (MTU 65535): a 64 KiB block sends its first 63 KiB, a 1 MiB
 *            block 16 datagrams of 63 KiB.
 *
 * Sender CPU is CLOCK_PROCESS_CPUTIME_ID of the sending process (io_uring
 * work runs in it: DEFER_TASKRUN rings complete inside its own calls),
 * best of --reps runs of --mib MiB each (a quarter of that for 4 KiB); a
 * run also stops after 10 s.  The target of issue 7: zero-copy sender CPU
 * per GiB at most 0.5x that of send() at 64 KiB and above, into the
 * interface.
 *
 * The program starts its own arenad (--arenad, default next to this
 * binary's directory) with 4 KiB, 64 KiB and 1 MiB classes small enough
 * to register under the default 8 MiB memlock limit.  Output: a table on
 * stdout; exit 0 unless something failed to run.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arena/arena.h>

#define NSIZES 3
#define NBLOCKS 4
#define BATCH 16
#define UDP_MAX (63u << 10)
#define RUN_CAP_S 10.0
#define QDEPTH 64
#define GIB (1024.0 * 1024 * 1024)

static const size_t sizes[NSIZES] = { 4096, 65536, 1 << 20 };

enum method { M_SEND, M_MMSG, M_ZC, M_ZCQ, NMETHODS };

static const char *const method_name[NMETHODS] = {
	[M_SEND] = "send()",
	[M_MMSG] = "sendmmsg16",
	[M_ZC] = "send_zc",
	[M_ZCQ] = "send_zc16",
};

struct opts {
	const char *arenad;
	unsigned mib;
	unsigned reps;
};

/* One measurement: what a run of one method at one size gave. */
struct row {
	char net[16];
	size_t size;
	int method;
	bool skip;	   /* not measured on this transport */
	double cpu_ms_gib; /* best */
	double gib_s;	   /* best */
	double copied;	   /* share of zero-copy results the kernel copied */
	unsigned mode;
	int err; /* 0, or why the row has no numbers */
};

struct ctx {
	struct arena_client *c;
	struct arena_zc *z;
	arena_handle_t h[NSIZES][NBLOCKS];
};

static double now_s(clockid_t clk)
{
	struct timespec t;

	clock_gettime(clk, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

/* ---- the daemon ---- */

static char dir[PATH_MAX], sock[PATH_MAX + 32], logpath[PATH_MAX + 32];
static pid_t daemon_pid;

static int daemon_start(const char *arenad)
{
	const char *tmp = getenv("TMPDIR");
	struct arena_client *c;
	int i, log;

	snprintf(dir, sizeof(dir), "%s/arena-zc.XXXXXX", tmp ? tmp : "/tmp");
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
		execl(arenad, arenad, "--size", "16M", "--socket", sock,
		      "--fixed", "4K:64", "--fixed", "64K:16", "--fixed",
		      "1M:4", (char *)NULL);
		fprintf(stderr, "bench_zc: cannot run %s: %s\n", arenad,
			strerror(errno));
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

/* Stop the daemon; its log goes to stderr when asked. */
static void daemon_stop(bool show_log)
{
	char buf[4096];
	ssize_t n;
	int fd;

	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	fd = show_log ? open(logpath, O_RDONLY) : -1;
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		if (write(2, buf, (size_t)n) != n)
			break;
	if (fd >= 0)
		close(fd);
	unlink(logpath);
	unlink(sock);
	rmdir(dir);
}

/* ---- blocks and the zero-copy sender ---- */

static int ctx_open(struct ctx *x)
{
	unsigned s, b;
	int err;

	memset(x, 0, sizeof(*x));
	err = arena_connect(sock, &x->c);
	if (err)
		return err;
	for (s = 0; s < NSIZES; s++)
		for (b = 0; b < NBLOCKS; b++) {
			err = arena_alloc(x->c, ARENA_KIND_FIXED, sizes[s],
					  &x->h[s][b]);
			if (err)
				return err;
			memset(arena_ptr(x->c, x->h[s][b]), 'a' + (int)b,
			       sizes[s]);
		}
	return arena_zc_open(x->c, QDEPTH, &x->z);
}

static void ctx_close(struct ctx *x)
{
	unsigned s, b;

	arena_zc_close(x->z);
	for (s = 0; s < NSIZES; s++)
		for (b = 0; b < NBLOCKS; b++)
			arena_unref(x->c, x->h[s][b]);
	arena_disconnect(x->c);
}

struct tally {
	uint64_t results, copied;
	int err;
};

static void tally_add(struct tally *t, const struct arena_zc_result *r, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		t->results++;
		if (r[i].flags & ARENA_ZC_COPIED)
			t->copied++;
		if (r[i].res < 0 && !t->err)
			t->err = (int)-r[i].res;
	}
}

static int zc_one(struct ctx *x, int fd, arena_handle_t h, size_t off,
		  size_t len, bool queue, struct tally *t)
{
	struct arena_zc_result r[QDEPTH];
	int err, n;

	while ((err = (queue ? arena_zc_queue : arena_zc_send)(
			x->z, fd, h, off, len, 0)) == -EBUSY) {
		n = arena_zc_complete(x->z, r, QDEPTH, -1);
		if (n < 0)
			return n;
		tally_add(t, r, n);
	}
	return err;
}

static int zc_drain(struct ctx *x, struct tally *t, uint64_t sent)
{
	struct arena_zc_result r[QDEPTH];
	int n;

	while (t->results < sent) {
		n = arena_zc_complete(x->z, r, QDEPTH, 10000);
		if (n <= 0)
			return n < 0 ? n : -ETIMEDOUT;
		tally_add(t, r, n);
	}
	return 0;
}

static int plain_one(int fd, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sendmmsg() of n datagrams, until all went. */
static int mmsg_flush(int fd, struct mmsghdr *m, struct iovec *iov, unsigned n)
{
	unsigned i;
	int k;

	for (i = 0; i < n; i++)
		m[i] = (struct mmsghdr){
			.msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 },
		};
	for (i = 0; i < n; i += (unsigned)k) {
		k = sendmmsg(fd, m + i, n - i, 0);
		if (k < 0 && errno == EINTR)
			k = 0;
		else if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
	}
	return 0;
}

struct batch {
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	unsigned n;
};

/* One datagram of a method, from block h at off. */
static int send_one(struct ctx *x, int fd, int method, arena_handle_t h,
		    size_t off, size_t len, struct batch *b, struct tally *t)
{
	uint8_t *p = (uint8_t *)arena_ptr(x->c, h) + off;
	int err;

	switch (method) {
	case M_SEND:
		return plain_one(fd, p, len);
	case M_MMSG:
		b->iov[b->n++] =
			(struct iovec){ .iov_base = p, .iov_len = len };
		if (b->n < BATCH)
			return 0;
		b->n = 0;
		return mmsg_flush(fd, b->m, b->iov, BATCH);
	case M_ZC:
		return zc_one(x, fd, h, off, len, false, t);
	default:
		err = zc_one(x, fd, h, off, len, true, t);
		if (!err && ++b->n == BATCH) {
			b->n = 0;
			err = arena_zc_flush(x->z);
		}
		return err;
	}
}

/*
 * Send blocks of sizes[s] until bytes have gone (or the cap), each block
 * as datagrams of at most dgram bytes; returns 0 or -errno and fills
 * the CPU and wall seconds and the copied share.
 */
static int run_once(struct ctx *x, int fd, unsigned s, size_t dgram, int method,
		    uint64_t bytes, double *cpu, double *wall, double *copied)
{
	static struct batch b;
	bool zc = method >= M_ZC;
	double c0 = now_s(CLOCK_PROCESS_CPUTIME_ID),
	       w0 = now_s(CLOCK_MONOTONIC);
	struct tally t = { 0 };
	uint64_t done = 0, sends = 0, i;
	size_t off, len;
	int err = 0;

	b.n = 0;
	for (i = 0; done < bytes && !err; i++) {
		arena_handle_t h = x->h[s][i % NBLOCKS];

		for (off = 0; off + dgram <= sizes[s] && !err;
		     off += len, sends++) {
			len = dgram;
			err = send_one(x, fd, method, h, off, len, &b, &t);
			done += len;
		}
		if (!(i & 63) && now_s(CLOCK_MONOTONIC) - w0 > RUN_CAP_S)
			break;
	}
	if (!err && method == M_MMSG && b.n)
		err = mmsg_flush(fd, b.m, b.iov, b.n);
	if (!err && zc)
		err = zc_drain(x, &t, sends);
	*cpu = now_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	*wall = now_s(CLOCK_MONOTONIC) - w0;
	*cpu *= GIB / (double)done;
	*wall = (double)done / GIB / *wall;
	*copied = t.results ? (double)t.copied / (double)t.results : 0;
	return err ? err : -t.err;
}

static void measure(struct ctx *x, const struct opts *o, const char *net,
		    int fd, unsigned s, size_t dgram, int method, struct row *r)
{
	uint64_t bytes = (uint64_t)o->mib << 20;
	double cpu, gibs, copied;
	unsigned k;

	memset(r, 0, sizeof(*r));
	snprintf(r->net, sizeof(r->net), "%s", net);
	r->size = sizes[s];
	r->method = method;
	r->mode = arena_zc_mode(x->z);
	if (sizes[s] < 65536)
		bytes /= 4;
	for (k = 0; k < o->reps; k++) {
		r->err = run_once(x, fd, s, dgram, method, bytes, &cpu, &gibs,
				  &copied);
		if (r->err)
			return;
		if (k == 0 || cpu < r->cpu_ms_gib)
			r->cpu_ms_gib = cpu;
		if (gibs > r->gib_s)
			r->gib_s = gibs;
		r->copied = copied;
	}
	r->cpu_ms_gib *= 1000;
}

/* Every size and method; datagrams of at most dgram bytes, or none. */
static void measure_all(struct ctx *x, const struct opts *o, const char *net,
			int fd, size_t dgram, struct row rows[][NMETHODS])
{
	unsigned s;
	int m;

	for (s = 0; s < NSIZES; s++)
		for (m = 0; m < NMETHODS; m++) {
			if (m == M_MMSG && !dgram) {
				rows[s][m].skip = true;
				continue;
			}
			measure(x, o, net, fd, s,
				dgram && dgram < sizes[s] ? dgram : sizes[s], m,
				&rows[s][m]);
		}
}

/* ---- (a) loopback TCP ---- */

static int tcp_pair(int *tx, pid_t *rx_pid)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), fd;
	static char buf[1 << 20];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, len) ||
	    listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &len))
		return -errno;
	*rx_pid = fork();
	if (*rx_pid == 0) { /* the receiver: read and drop */
		fd = accept(lfd, NULL, NULL);
		while (fd >= 0 && recv(fd, buf, sizeof(buf), MSG_TRUNC) > 0)
			;
		_exit(0);
	}
	*tx = socket(AF_INET, SOCK_STREAM, 0);
	if (*rx_pid < 0 || *tx < 0 ||
	    connect(*tx, (struct sockaddr *)&a, sizeof(a)))
		return -errno;
	close(lfd);
	return 0;
}

static int bench_tcp(const struct opts *o, struct row rows[][NMETHODS])
{
	struct ctx x;
	pid_t rx = -1;
	int fd = -1, err = ctx_open(&x);

	if (!err)
		err = tcp_pair(&fd, &rx);
	if (err)
		return err;
	measure_all(&x, o, "tcp-lo", fd, 0, rows);
	close(fd);
	waitpid(rx, NULL, 0);
	ctx_close(&x);
	return 0;
}

/* ---- (b) UDP into an interface in a private network namespace ---- */

static int ip(const char *a1, const char *a2, const char *a3, const char *a4,
	      const char *a5, const char *a6, const char *a7)
{
	const char *argv[] = { "ip", a1, a2, a3, a4, a5, a6, a7, NULL };
	int st, null;
	pid_t pid = fork();

	if (pid == 0) {
		null = open("/dev/null", O_WRONLY);
		dup2(null, 2);
		execvp("ip", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* d0, up, MTU 65535, 10.77.0.1/24: a dummy, else an ifb; its kind. */
static const char *sink_setup(void)
{
	static const char *const kinds[] = { "dummy", "ifb" };
	unsigned i;

	for (i = 0; i < 2; i++)
		if (!ip("link", "add", "d0", "type", kinds[i], NULL, NULL))
			break;
	if (i == 2)
		return NULL;
	if (ip("link", "set", "d0", "mtu", "65535", "up", NULL) ||
	    ip("addr", "add", "10.77.0.1/24", "dev", "d0", NULL, NULL))
		return NULL;
	return kinds[i];
}

static int udp_to_sink(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	a.sin_addr.s_addr = htonl(0x0a4d0002); /* 10.77.0.2, via d0 */
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return -1;
	return fd;
}

/* Bytes d0 transmitted (as its driver counts them) from /proc/net/dev. */
static uint64_t sink_bytes(void)
{
	unsigned long long rx, tx, v[7];
	char line[512];
	uint64_t n = 0;
	FILE *f = fopen("/proc/net/dev", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line,
			   " d0: %llu %llu %llu %llu %llu %llu %llu %llu "
			   "%llu",
			   &rx, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &tx) == 9)
			n = rx > tx ? rx : tx; /* an ifb counts drops as rx */
	if (f)
		fclose(f);
	return n;
}

struct netjob {
	const struct opts *o;
	int out; /* pipe: rows, then the sink's kind and byte count */
};

static int net_child(const struct netjob *j)
{
	struct row rows[NSIZES][NMETHODS];
	char kind[16] = "";
	const char *k;
	struct ctx x;
	uint64_t bytes;
	int fd;

	if (ctx_open(&x))
		return 2;
	if (unshare(CLONE_NEWNET)) {
		fprintf(stderr, "bench_zc: no private network namespace: %s\n",
			strerror(errno));
		return 3;
	}
	k = sink_setup();
	fd = udp_to_sink();
	if (!k || fd < 0) {
		fprintf(stderr, "bench_zc: no dummy or ifb interface\n");
		return 3;
	}
	snprintf(kind, sizeof(kind), "udp-%s", k);
	measure_all(&x, j->o, kind, fd, UDP_MAX, rows);
	bytes = sink_bytes();
	if (write(j->out, rows, sizeof(rows)) != sizeof(rows) ||
	    write(j->out, &bytes, sizeof(bytes)) != sizeof(bytes))
		return 2;
	ctx_close(&x);
	return 0;
}

static int bench_net(const struct opts *o, struct row rows[][NMETHODS],
		     uint64_t *sunk)
{
	struct netjob j = { .o = o };
	int p[2], st;
	pid_t pid;

	if (pipe(p))
		return -errno;
	j.out = p[1];
	pid = fork();
	if (pid == 0)
		_exit(net_child(&j));
	close(p[1]);
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return -errno;
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		close(p[0]);
		return WIFEXITED(st) && WEXITSTATUS(st) == 3 ? -EPERM : -EIO;
	}
	if (read(p[0], rows, sizeof(struct row) * NSIZES * NMETHODS) !=
		    (ssize_t)(sizeof(struct row) * NSIZES * NMETHODS) ||
	    read(p[0], sunk, sizeof(*sunk)) != sizeof(*sunk))
		st = -EIO;
	close(p[0]);
	return st;
}

/* ---- report ---- */

static const char *mode_name(unsigned m)
{
	if (m & ARENA_ZC_MODE_FIXED)
		return "fixed";
	if (m & ARENA_ZC_MODE_ZC)
		return "unreg";
	return m & ARENA_ZC_MODE_NORING ? "no-io_uring" : "copy";
}

static void print_row(const struct row *r, const struct row *base)
{
	if (r->skip)
		return;
	printf("%-9s %7zu  %-10s", r->net, r->size, method_name[r->method]);
	if (r->err) {
		printf("  failed: %s\n", strerror(r->err));
		return;
	}
	printf(" %10.1f %8.2f", r->cpu_ms_gib, r->gib_s);
	if (r != base && !base->err)
		printf(" %9.2fx %7.2fx", r->cpu_ms_gib / base->cpu_ms_gib,
		       r->gib_s / base->gib_s);
	if (r->method >= M_ZC)
		printf(" %6.0f%%  %s", r->copied * 100, mode_name(r->mode));
	printf("\n");
}

static void print_rows(const struct row rows[][NMETHODS])
{
	unsigned s;
	int m;

	for (s = 0; s < NSIZES; s++)
		for (m = 0; m < NMETHODS; m++)
			print_row(&rows[s][m], &rows[s][M_SEND]);
}

static void print_targets(const struct row net[][NMETHODS])
{
	static const int zc[] = { M_ZC, M_ZCQ };
	const struct row *r, *b;
	unsigned s, i;
	double ratio;

	printf("\ntarget (issue 7): send_zc sender CPU/GiB <= 0.5x send(), "
	       "64 KiB and above, UDP into the interface\n");
	for (s = 1; s < NSIZES; s++)
		for (i = 0; i < 2; i++) {
			r = net ? &net[s][zc[i]] : NULL;
			b = net ? &net[s][M_SEND] : NULL;
			printf("  %7zu B %-10s ", sizes[s], method_name[zc[i]]);
			if (!r || r->err || b->err) {
				printf("n/a (not measured)\n");
				continue;
			}
			ratio = r->cpu_ms_gib / b->cpu_ms_gib;
			printf("%.2fx  %s\n", ratio,
			       ratio <= 0.5 ? "PASS" : "MISS");
		}
}

static int parse(int argc, char **argv, struct opts *o)
{
	static char def[PATH_MAX];
	char *slash;
	int i;

	snprintf(def, sizeof(def), "%s", argv[0]);
	slash = strrchr(def, '/');
	snprintf(slash ? slash + 1 : def,
		 sizeof(def) - (size_t)(slash ? slash + 1 - def : 0),
		 "../arenad");
	*o = (struct opts){ .arenad = def, .mib = 1024, .reps = 3 };
	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--arenad"))
			o->arenad = argv[i + 1];
		else if (!strcmp(argv[i], "--mib"))
			o->mib = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--reps"))
			o->reps = (unsigned)atoi(argv[i + 1]);
		else
			break;
	}
	if (i != argc || o->mib == 0 || o->mib > 65536 || o->reps == 0 ||
	    o->reps > 100) {
		fprintf(stderr,
			"usage: %s [--arenad PATH] [--mib N] "
			"[--reps N]\n",
			argv[0]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct row tcp[NSIZES][NMETHODS], net[NSIZES][NMETHODS];
	uint64_t sunk = 0;
	struct opts o;
	int err, nerr;

	if (parse(argc, argv, &o))
		return 2;
	signal(SIGPIPE, SIG_IGN);
	err = daemon_start(o.arenad);
	if (err) {
		fprintf(stderr, "bench_zc: arenad: %s\n", strerror(-err));
		daemon_stop(true);
		return 1;
	}
	err = bench_tcp(&o, tcp);
	nerr = geteuid() == 0 ? bench_net(&o, net, &sunk) : -EPERM;
	daemon_stop(err != 0);
	if (err) {
		fprintf(stderr, "bench_zc: loopback TCP: %s\n", strerror(-err));
		return 1;
	}
	printf("zero-copy sends: sender CPU per GiB and throughput, best of "
	       "%u runs of %u MiB (4 KiB: %u MiB)\n",
	       o.reps, o.mib, o.mib / 4);
	printf("%-9s %7s  %-10s %10s %8s %10s %8s %7s  %s\n", "net", "size",
	       "method", "cpu ms/GiB", "GiB/s", "cpu ratio", "speed", "copied",
	       "mode");
	print_rows(tcp);
	if (nerr)
		printf("udp into an interface: not run (%s)\n",
		       nerr == -EPERM ? "needs root and a network namespace"
				      : strerror(-nerr));
	else
		print_rows(net);
	if (!nerr)
		printf("(the interface counted %.2f GiB)\n", sunk / GIB);
	printf("ratios: against send() of the same size; copied: the "
	       "kernel's own report\n"
	       "tcp-lo: loopback hands the pages to a local socket, which "
	       "copies them\n"
	       "udp: datagrams of at most 63 KiB: a 64 KiB block sends 63 KiB, "
	       "a 1 MiB block 16 x 63 KiB\n");
	print_targets(nerr ? NULL : net);
	return nerr && nerr != -EPERM ? 1 : 0;
}
