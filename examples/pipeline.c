// SPDX-License-Identifier: MIT
/*
 * A producer/consumer pipeline moving 1 MiB frames without copying them:
 * the producer allocates each frame from the buddy arena, renders into
 * it and sends the handle on channel "frames"; the consumer receives it,
 * reads the frame where it lies and drops its reference, which returns
 * the memory.  A full channel makes the producer wait (back-pressure);
 * an empty one puts the consumer to sleep on a futex, no polling.
 *
 *   arenad --size 256M --socket /tmp/arenad.sock &
 *   ARENA_SOCKET=/tmp/arenad.sock ./pipeline
 */
#include <arena/arena.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FRAME (1u << 20)
#define FRAMES 1000

static int producer(void)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;
	uint32_t *px;
	int err, i;

	if (arena_connect(NULL, &c) || arena_chan_open(c, "frames", 16, &ch))
		return 1;
	for (i = 0; i < FRAMES; i++) {
		while ((err = arena_alloc(c, ARENA_KIND_AUTO, FRAME, &h)) ==
		       -ENOMEM)
			usleep(100); /* every frame is in flight: wait */
		if (err) {
			fprintf(stderr, "alloc: %s\n", strerror(-err));
			return 1;
		}
		px = arena_ptr(c, h);
		px[0] = (uint32_t)i; /* "render" */
		px[FRAME / 4 - 1] = (uint32_t)i;
		err = arena_chan_send_wait(ch, h, -1);
		if (err) {
			fprintf(stderr, "send: %s\n", strerror(-err));
			return 1;
		}
	}
	arena_chan_close(ch);
	arena_disconnect(c);
	return 0;
}

static int consumer(void)
{
	struct arena_client *c;
	struct arena_chan *ch;
	arena_handle_t h;
	uint32_t *px;
	int i, bad = 0;

	if (arena_connect(NULL, &c) || arena_chan_open(c, "frames", 16, &ch))
		return 1;
	for (i = 0; i < FRAMES; i++) {
		if (arena_chan_recv(ch, &h, 10000))
			return 1;
		px = arena_ptr(c, h);
		bad += px[0] != (uint32_t)i || px[FRAME / 4 - 1] != (uint32_t)i;
		arena_unref(c, h); /* the frame goes back to the arena */
	}
	printf("consumer: %d frames of %u bytes, %d out of place\n", FRAMES,
	       FRAME, bad);
	arena_chan_close(ch);
	arena_disconnect(c);
	return bad != 0;
}

int main(void)
{
	pid_t pid = fork();
	int st, rc;

	if (pid == 0)
		_exit(producer());
	rc = consumer();
	waitpid(pid, &st, 0);
	return rc || st;
}
