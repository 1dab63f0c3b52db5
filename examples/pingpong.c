// SPDX-License-Identifier: MIT
/*
 * Ping-pong over two channels: one block bounces between two processes
 * and only its handle moves.  Each side receives it (and with it the
 * reference), bumps a counter inside the block in place, and sends it
 * back (handing the reference on).  Run it against a daemon:
 *
 *   arenad --size 64M --socket /tmp/arenad.sock &
 *   ARENA_SOCKET=/tmp/arenad.sock ./pingpong
 */
#include <arena/arena.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 100000

/* Receive on in, count, send on out; rounds times.  The parent starts. */
static int play(int start, int rounds)
{
	struct arena_client *c;
	struct arena_chan *in, *out;
	arena_handle_t h;
	int err, i;

	err = arena_connect(NULL, &c);
	if (err) {
		fprintf(stderr, "arena_connect: %s\n", strerror(-err));
		return 1;
	}
	if (arena_chan_open(c, start ? "pong" : "ping", 2, &in) ||
	    arena_chan_open(c, start ? "ping" : "pong", 2, &out))
		return 1;
	if (start) {
		arena_alloc(c, ARENA_KIND_AUTO, sizeof(uint64_t), &h);
		*(uint64_t *)arena_ptr(c, h) = 0;
		arena_chan_send(out, h); /* the reference goes with it */
	}
	for (i = 0; i < rounds; i++) {
		err = arena_chan_recv(in, &h, 5000); /* ours now */
		if (err) {
			fprintf(stderr, "recv: %s\n", strerror(-err));
			return 1;
		}
		(*(uint64_t *)arena_ptr(c, h))++;
		if (start && i == rounds - 1)
			break; /* keep the last one */
		arena_chan_send_wait(out, h, -1);
	}
	if (start) {
		printf("counter after %d round trips: %llu\n", rounds,
		       (unsigned long long)*(uint64_t *)arena_ptr(c, h));
		arena_unref(c, h);
	}
	arena_chan_close(in);
	arena_chan_close(out);
	arena_disconnect(c);
	return 0;
}

int main(void)
{
	pid_t pid = fork();
	int st, rc;

	if (pid == 0)
		_exit(play(0, ROUNDS));
	rc = play(1, ROUNDS);
	waitpid(pid, &st, 0);
	return rc || st;
}
