// SPDX-License-Identifier: MIT
/*
 * A program of a library user, built by tests/test_install.c against the
 * installed header and library with only what pkg-config says, once as C
 * and once as C++ (so it is written in the common subset of both).  It
 * attaches to $ARENA_SOCKET, shares nothing, checks one block's whole
 * life and opens a zero-copy sender (so that a static link needs what
 * libarena.a needs); "consumer ok" on stdout means every step worked.
 */
#include <arena/arena.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef __cplusplus
#define LANG "C++"
#else
#define LANG "C"
#endif

#define STR(x) #x
#define VERSION(a, b, c) STR(a) "." STR(b) "." STR(c)

static int check(int err, const char *what)
{
	if (err)
		fprintf(stderr, "consumer: %s: %s\n", what, strerror(-err));
	return err;
}

static int one_block(struct arena_client *c)
{
	arena_handle_t h = ARENA_HANDLE_NULL;
	char *p;

	if (check(arena_alloc(c, ARENA_KIND_AUTO, 100, &h), "arena_alloc"))
		return 1;
	p = (char *)arena_ptr(c, h);
	if (!p || arena_size(c, h) < 100)
		return check(-EFAULT, "arena_ptr/arena_size");
	strcpy(p, "consumer");
	if (check(arena_ref(c, h), "arena_ref") ||
	    check(arena_unref(c, h), "arena_unref") ||
	    strcmp((const char *)arena_ptr(c, h), "consumer") ||
	    check(arena_unref(c, h), "last arena_unref"))
		return 1;
	return arena_ptr(c, h) != NULL; /* freed: the handle is stale */
}

/* Opening pulls io_uring in; any mode will do, even without io_uring. */
static int one_sender(struct arena_client *c)
{
	struct arena_zc *z = NULL;

	if (check(arena_zc_open(c, 4, &z), "arena_zc_open"))
		return 1;
	if (!arena_zc_mode(z))
		return check(-EINVAL, "arena_zc_mode");
	arena_zc_close(z);
	return 0;
}

int main(void)
{
	struct arena_client *c = NULL;
	struct arena_info info;
	int bad;

	if (strcmp(arena_version(),
		   VERSION(ARENA_VERSION_MAJOR, ARENA_VERSION_MINOR,
			   ARENA_VERSION_PATCH))) {
		fprintf(stderr, "consumer: header and library disagree\n");
		return 1;
	}
	if (check(arena_connect(NULL, &c), "arena_connect"))
		return 1;
	bad = check(arena_info(c, 0, &info), "arena_info") || one_block(c) ||
	      one_sender(c);
	if (!bad)
		printf("consumer ok: %s, libarena %s, client %u\n", LANG,
		       arena_version(), arena_client_id(c));
	arena_disconnect(c);
	return bad;
}
