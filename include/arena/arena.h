/* SPDX-License-Identifier: MIT */
/*
 * libarena: allocate, share and free blocks of an arenad shared-memory
 * region from any number of processes.
 *
 * A process attaches with arena_connect(), which maps the daemon's region.
 * Allocation, reference counting and freeing then happen in this process,
 * lock-free, through atomics in the shared memory; the daemon is only on
 * the control path.  Blocks are named by handles: 64-bit values that mean
 * the same block in every process attached to the same daemon, so they can
 * be sent through pipes, sockets or shared memory as plain integers.
 *
 * Every int function returns 0 (or a count) on success and a negative
 * errno on failure; on failure nothing was changed.  All functions are
 * thread-safe: any thread may use any client.  The library never prints
 * and never exits.
 *
 * A client belongs to the process that connected it.  A child created by
 * fork() must connect its own; on a client inherited from its parent,
 * arena_alloc, arena_ref and arena_unref return -ECHILD (arena_ptr and
 * arena_size still work, and arena_disconnect just releases the copy).
 */
#ifndef ARENA_ARENA_H
#define ARENA_ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARENA_VERSION_MAJOR 0
#define ARENA_VERSION_MINOR 1
#define ARENA_VERSION_PATCH 0

#if defined(__GNUC__)
#define ARENA_API __attribute__((visibility("default")))
#else
#define ARENA_API
#endif

/* One attachment to a daemon; opaque. */
struct arena_client;

/* Names a block in every attached process.  0 is never a valid handle. */
typedef uint64_t arena_handle_t;

#define ARENA_HANDLE_NULL ((arena_handle_t)0)

enum arena_kind {
	ARENA_KIND_AUTO = 0,  /* smallest fixed class that fits */
	ARENA_KIND_FIXED = 1, /* fixed-size slots in size classes */
	ARENA_KIND_BUDDY = 2, /* power-of-two blocks (not yet served) */
	ARENA_KIND_BUMP = 3,  /* bump allocation (not yet served) */
};

/*
 * Attach to a daemon and map its region.
 *
 * socket_path NULL means $ARENA_SOCKET, else $XDG_RUNTIME_DIR/arenad.sock,
 * else /run/arenad/arenad.sock.
 *
 * Returns 0 and sets *out, or:
 *   -EINVAL       out is NULL, or the path does not fit a socket address
 *   -ENOENT, -ECONNREFUSED, ...  as connect(2) reports them
 *   -EACCES       the daemon refused this process's user
 *   -EPROTO       the daemon speaks another protocol or layout version
 *   -EUSERS       the daemon has no free client slot
 *   -EBADMSG      the daemon's reply or region failed validation
 *   -ENOMEM       out of memory in this process
 */
ARENA_API int arena_connect(const char *socket_path, struct arena_client **out);

/*
 * Detach: return this client's cached free blocks, unmap, close.  Blocks
 * still referenced by this client are released by the daemon as if the
 * client had died.  Handles and pointers of this client are invalid after
 * the call.  NULL is ignored.
 */
ARENA_API void arena_disconnect(struct arena_client *c);

/*
 * Allocate a block of at least size bytes and take its first reference.
 * ARENA_KIND_AUTO and ARENA_KIND_FIXED pick the smallest fixed class that
 * fits.  Blocks are aligned to the largest power of two dividing the class
 * size, at least 16 bytes; contents are not initialised.
 *
 * Returns 0 and sets *out, or:
 *   -EINVAL   c or out is NULL, size is 0, or kind is not an enum value
 *   -E2BIG    no arena of this kind could ever hold size bytes
 *   -ENOMEM   the arena that fits is full right now (transient)
 *   -ENOTSUP  the daemon has no arena of this kind
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_alloc(struct arena_client *c, enum arena_kind kind,
			  size_t size, arena_handle_t *out);

/*
 * The block's address in this process, or NULL when h is not a live
 * handle of this client's region (forged, stale, freed).  Valid until the
 * last reference anywhere is dropped.
 */
ARENA_API void *arena_ptr(struct arena_client *c, arena_handle_t h);

/* The block's usable size in bytes, or 0 when h is not a live handle. */
ARENA_API size_t arena_size(struct arena_client *c, arena_handle_t h);

/*
 * Take one more reference to a live block for this client.  A client may
 * hold several references to one block; each needs its own unref.
 *
 * Returns 0, or:
 *   -EINVAL     c is NULL, or h is not a handle of this region
 *   -ESTALE     the block was freed (generation mismatch)
 *   -EOVERFLOW  the block has the maximum number of references (65535)
 *   -ENOSPC     this client's reference ledger is full
 *   -ECHILD     c was inherited through fork()
 */
ARENA_API int arena_ref(struct arena_client *c, arena_handle_t h);

/*
 * Drop one of this client's references; the last reference anywhere
 * returns the block to its arena and bumps its generation.
 *
 * Returns 0, or:
 *   -EINVAL   c is NULL, h is not a handle of this region, or this client
 *             holds no reference to the block (other holders keep theirs)
 *   -ESTALE   the block was already freed, so this is a double unref or a
 *             stale handle
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_unref(struct arena_client *c, arena_handle_t h);

/* Statistics of one arena as the library sees them. */
struct arena_info {
	uint32_t index;	     /* arena number, as in a handle */
	uint32_t kind;	     /* enum arena_kind */
	uint64_t block_size; /* bytes per block */
	uint64_t capacity;   /* blocks */
};

/*
 * Describe arena number idx of the attached region.  Returns 0, -EINVAL
 * for a NULL argument, or -ENOENT when idx is past the last arena.
 */
ARENA_API int arena_info(struct arena_client *c, unsigned idx,
			 struct arena_info *out);

/* This client's id at the daemon (1..4095), or 0 for NULL. */
ARENA_API unsigned arena_client_id(const struct arena_client *c);

/* "MAJOR.MINOR.PATCH" of the library. */
ARENA_API const char *arena_version(void);

#ifdef __cplusplus
}
#endif

#endif
