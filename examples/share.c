// SPDX-License-Identifier: MIT
/*
 * Two processes, one block, no copy: the parent allocates a block, writes
 * into it and sends only its 8-byte handle through a pipe; the child
 * attaches to the same daemon, turns the handle into a pointer, reads
 * the bytes, answers in place and drops its reference.
 *
 *   arenad --size 64M --socket /tmp/arenad.sock &
 *   ARENA_SOCKET=/tmp/arenad.sock ./share
 */
#include <arena/arena.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int child(int rfd)
{
	struct arena_client *c;
	arena_handle_t h;
	char *p;
	int err;

	if (read(rfd, &h, sizeof(h)) != sizeof(h))
		return 1;
	err = arena_connect(NULL, &c);
	if (err) {
		fprintf(stderr, "child: arena_connect: %s\n", strerror(-err));
		return 1;
	}
	arena_ref(c, h); /* our own reference while we use it */
	p = arena_ptr(c, h);
	printf("child %d reads: %s\n", (int)getpid(), p);
	fflush(stdout);
	strcpy(p, "hello back");
	arena_unref(c, h);
	arena_disconnect(c);
	return 0;
}

int main(void)
{
	struct arena_client *c;
	arena_handle_t h;
	int fds[2], err, st;
	pid_t pid;

	err = arena_connect(NULL, &c);
	if (err) {
		fprintf(stderr, "arena_connect: %s\n", strerror(-err));
		return 1;
	}
	err = arena_alloc(c, ARENA_KIND_AUTO, 200, &h);
	if (err) {
		fprintf(stderr, "arena_alloc: %s\n", strerror(-err));
		return 1;
	}
	strcpy(arena_ptr(c, h), "hello");
	if (pipe(fds) < 0)
		return 1;
	pid = fork();
	if (pid == 0)
		_exit(child(fds[0]));
	write(fds[1], &h, sizeof(h)); /* only the handle travels */
	waitpid(pid, &st, 0);
	printf("parent reads: %s (block of %zu bytes)\n",
	       (char *)arena_ptr(c, h), arena_size(c, h));
	arena_unref(c, h); /* last reference: the slot is free again */
	arena_disconnect(c);
	return 0;
}
