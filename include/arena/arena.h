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
 *
 * If the daemon dies, an attached client keeps its mapping of the region:
 * the blocks it holds stay readable and writable, and the data path
 * (arena_alloc, arena_ref, arena_unref, arena_ptr, channel sends and
 * receives, zero-copy sends) keeps working in the region as it is, since
 * it never needs the daemon.  Nothing is reclaimed any more, though: what
 * a process that dies from then on holds stays allocated.  Every call
 * that needs the daemon (arena_chan_open, arena_chan_close) returns
 * -ESHUTDOWN from then on, at once, instead of waiting; a daemon that is
 * alive but does not answer (stopped, stuck) gets -ETIMEDOUT after 10 s.
 * arena_disconnect works as usual.  A new arena_connect is what finds a
 * restarted daemon (a new region: old handles mean nothing there).
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
	ARENA_KIND_AUTO = 0,  /* smallest fixed class, else buddy */
	ARENA_KIND_FIXED = 1, /* fixed-size slots in size classes */
	ARENA_KIND_BUDDY = 2, /* power-of-two blocks, split and coalesced */
	ARENA_KIND_BUMP = 3,  /* bump allocation in per-thread chunks */
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
 * fits.  ARENA_KIND_BUDDY takes the smallest power of two of at least size
 * bytes and at least the buddy arena's minimum block; ARENA_KIND_AUTO
 * does too for sizes no fixed class holds.  Fixed blocks are aligned to
 * the largest power of two dividing the class size, at least 16 bytes;
 * buddy blocks to their size.  ARENA_KIND_BUMP bumps inside the calling
 * thread's chunk of the bump arena: any size up to the chunk size less
 * 16 bytes (each allocation carries a 16-byte header), 16-byte aligned;
 * its memory returns when every allocation of its chunk is unreferenced
 * and the chunk is retired.  Contents are not initialised.
 *
 * Returns 0 and sets *out, or:
 *   -EINVAL   c or out is NULL, size is 0, or kind is not an enum value
 *   -E2BIG    no arena of this kind could ever hold size bytes (for the
 *             buddy arena: size is above its largest block, the arena;
 *             bump: above the chunk size less the 16-byte header)
 *   -ENOMEM   the arena that fits is full right now (transient; for the
 *             buddy arena: no block of that size is free now; bump: the
 *             thread's chunk is full and no chunk is free)
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

/*
 * A bump scope of the calling thread: what arena_bump_checkpoint saw,
 * for arena_bump_rollback.  Plain data; copy it freely.
 */
typedef struct {
	uint64_t v[2];
} arena_bump_checkpoint_t;

/*
 * Record the calling thread's position in the bump arena.  Checkpoints
 * are per thread (per thread cache of c): roll back on the thread that
 * took the checkpoint.  They nest: roll back to the innermost first.
 *
 * Returns 0, or:
 *   -EINVAL   c or cp is NULL
 *   -ENOTSUP  the daemon has no bump arena
 *   -EAGAIN   every thread cache of c is taken (too many threads)
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_bump_checkpoint(struct arena_client *c,
				    arena_bump_checkpoint_t *cp);

/*
 * Drop the calling thread's references (its first one and any it took
 * since) to every bump allocation it made after cp was taken.  Trailing
 * allocations that no other process references are erased and the
 * thread bumps over their memory again at once; an allocation another
 * process still references stays valid until that process unrefs it,
 * and the memory before it returns with its chunk.  Handles of erased
 * allocations must not be used again (like memory after free, a later
 * allocation may reuse them).
 *
 * Returns 0, or:
 *   -EINVAL   c is NULL, or cp is not a checkpoint of this thread
 *   -ERANGE   the thread reserved 64 or more chunks since cp
 *   -ENOTSUP  the daemon has no bump arena
 *   -EAGAIN   every thread cache of c is taken (too many threads)
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_bump_rollback(struct arena_client *c,
				  arena_bump_checkpoint_t cp);

/* arena_alloc_ex() flags */
#define ARENA_ALLOC_ZERO (1u << 0) /* the block's bytes are all zero */

/*
 * As arena_alloc(), with flags: ARENA_ALLOC_ZERO clears the block's
 * usable bytes (arena_size() of them; for a bump allocation the size
 * rounded up to 16) before the call returns, at the cost of one memset
 * of those bytes.  Arenas the daemon runs with --init zero hand out
 * zeroed blocks whatever the flags (and are not cleared twice).
 * Returns what arena_alloc() returns, and -EINVAL also for an unknown
 * flag.
 */
ARENA_API int arena_alloc_ex(struct arena_client *c, enum arena_kind kind,
			     size_t size, unsigned flags, arena_handle_t *out);

/*
 * As arena_alloc(), but when the arena that fits is full, wait up to
 * timeout_ms (-1: without limit, 0: not at all) for a block of that kind
 * and size to be freed by any process: a short spin, then a sleep on a
 * futex in the region.  Waiters of one arena are served in the order
 * they started waiting (the first one holds back those behind it, also
 * ones that want smaller buddy blocks); a plain arena_alloc() does not
 * queue and may take a freed block first.  Blocks other threads keep
 * cached reach waiters when those threads next free in that arena, exit
 * or disconnect.  A waiter that dies leaves nothing behind.
 *
 * Returns what arena_alloc() returns, except:
 *   -ETIMEDOUT  nothing fitting was freed in time (instead of -ENOMEM);
 *               never before timeout_ms has passed
 *   -E2BIG      at once: the request could never fit, so it never waits
 *   -EINVAL     also for timeout_ms below -1
 *   -EINTR      a signal handler ran while the call slept
 *   -ENOTSUP    also when the daemon's region has no wait queues
 */
ARENA_API int arena_alloc_wait(struct arena_client *c, enum arena_kind kind,
			       size_t size, int timeout_ms,
			       arena_handle_t *out);

/*
 * Make *h name a block of at least new_size bytes holding the block's
 * data (the first min(old, new_size) bytes).  When the block is already
 * large enough *h is left as it is; otherwise a block is allocated as
 * ARENA_KIND_AUTO would for new_size (or from the same arena kind, if
 * that kind can hold it), the data copied, and the caller's reference to
 * the old block dropped: other holders of the old handle keep the old
 * block, unchanged, until they unref it.  "Can hold" means could ever
 * hold: a full arena of the same kind gives -ENOMEM, not another kind.
 * Bytes past the old data are not initialised (unless the new block's
 * arena runs with --init zero).
 *
 * Returns 0, or, with *h and both blocks unchanged:
 *   -EINVAL   c or h is NULL, new_size is 0, *h is not a handle of this
 *             region, or this client holds no reference to it
 *   -ESTALE   the block was freed
 *   -E2BIG    no arena could ever hold new_size bytes
 *   -ENOMEM   no fitting block is free now
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_realloc(struct arena_client *c, arena_handle_t *h,
			    size_t new_size);

/*
 * Drop the whole contents of the bump arena in one operation: every
 * chunk, including those other threads and processes are bumping in,
 * becomes free, and their next bump allocation starts in a new chunk.
 * Only when no bump allocation anywhere is referenced.
 *
 * The calling thread's chunk is free when the call returns; a chunk
 * another thread is bumping in goes back at that thread's next bump
 * call (allocation, checkpoint, rollback) or exit, never while it may
 * still write into it; a dead process's, when the daemon reclaims it.
 * An allocation another thread makes while the reset runs is ordered
 * after it: it stays valid.
 *
 * Returns 0, or, with nothing changed:
 *   -EINVAL   c is NULL
 *   -EBUSY    some bump allocation is still referenced
 *   -ENOTSUP  the daemon has no bump arena
 *   -ECHILD   c was inherited through fork()
 */
ARENA_API int arena_bump_reset(struct arena_client *c);

/*
 * Live metrics of one arena, summed over every process attached now or
 * before (also what arenactl stats prints).  Counters are per thread in
 * the region and summed when read, so a snapshot taken while others
 * allocate may be a few operations behind; with nothing under way it is
 * exact.  Block and byte counts: the blocks' sizes (a buddy block's power
 * of two, a bump allocation's requested size).
 */
struct arena_stats {
	uint32_t index;	       /* arena number */
	uint32_t kind;	       /* enum arena_kind */
	uint64_t block_size;   /* as in struct arena_info */
	uint64_t capacity;     /* as in struct arena_info */
	uint64_t live_blocks;  /* allocated now */
	uint64_t live_bytes;   /* bytes of those blocks */
	uint64_t peak_blocks;  /* high-water mark of live_blocks */
	uint64_t peak_bytes;   /* high-water mark of live_bytes */
	uint64_t allocs;       /* successful allocations, cumulative */
	uint64_t frees;	       /* blocks returned, cumulative */
	uint64_t fail_full;    /* -ENOMEM and -ETIMEDOUT */
	uint64_t fail_big;     /* -E2BIG */
	uint64_t waits;	       /* arena_alloc_wait() calls that slept */
	uint64_t wait_ns;      /* total time those calls waited */
	uint64_t free_bytes;   /* bytes free now */
	uint64_t largest_free; /* bytes of the largest free block */
	uint64_t reserved[6];
};

/*
 * Fill *out with the live metrics of arena number idx.  The high-water
 * marks are those seen by an arena_stats() call (any process's; each
 * call raises them to what it sees) or by arenad, which samples every
 * arena every few milliseconds while clients are attached: a peak
 * shorter than that, between two looks, is missed.  free_bytes: fixed
 * arenas, the slots not allocated; buddy, the arena less live_bytes;
 * bump, the free chunks.  largest_free: the block size when a slot is
 * free (fixed), the largest block the buddy tree holds free (blocks
 * cached by threads not counted), the largest allocation a free chunk
 * takes (bump); 0 when none.  Returns 0, -EINVAL for a NULL argument,
 * or -ENOENT when idx is past the last arena.
 */
ARENA_API int arena_stats(struct arena_client *c, unsigned idx,
			  struct arena_stats *out);

/* Statistics of one arena as the library sees them. */
struct arena_info {
	uint32_t index;	     /* arena number, as in a handle */
	uint32_t kind;	     /* enum arena_kind */
	uint64_t block_size; /* bytes per block; buddy: the minimum block;
				bump: the chunk size */
	uint64_t capacity;   /* blocks; buddy: blocks of the minimum size;
				bump: chunks */
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

/*
 * Zero-copy sends of blocks to sockets (io_uring IORING_OP_SEND_ZC).
 *
 * An arena_zc owns an io_uring.  arena_zc_send() starts sending len bytes
 * of a block, from offset, on a socket and takes a reference on the block
 * that lasts until the kernel no longer reads its memory, so the caller
 * may drop its own reference right after the call.  arena_zc_complete()
 * then reports one result per send, once that reference is dropped.  Sends
 * on one socket leave in the order of the calls (but see arena_zc_queue()
 * for datagrams), each one whole: a send the kernel took only in part is
 * continued with the rest.
 * The library has no thread: those steps (the rest, the next send on a
 * socket) are taken inside arena_zc_send() and arena_zc_complete(), so a
 * sender that waits for something else should wait in the latter.
 *
 * arena_zc_open() registers the block memory of every arena as io_uring
 * fixed buffers, which pins it (all of it becomes resident while the
 * object lives).  What cannot be done is done another way and said,
 * in each result's flags and by arena_zc_mode():
 *
 *   registration refused (RLIMIT_MEMLOCK)   zero-copy without registration
 *   a socket refusing zero-copy (AF_UNIX)   a copying send on that socket
 *   no io_uring or no IORING_OP_SEND_ZC     copying sends
 *
 * ARENA_ZC_FORCE, read by arena_zc_open() (unless setuid), forces a
 * fallback for tests: "unreg" (no registration), "nozc" (copying sends
 * through io_uring) or "copy" (no io_uring: send(2) inside arena_zc_send).
 *
 * Unlike the rest of this header, an arena_zc belongs to one thread: the
 * one that opened it sends, completes and closes with it (one per sending
 * thread; other threads get -EPERM).  Its ring runs completions only when
 * that thread calls in, so it never interrupts the application's own
 * system calls.  Close it before disconnecting its client; a child after
 * fork() must not use its parent's.
 */
struct arena_zc;

struct arena_zc_result {
	uint64_t tag;	   /* as given to arena_zc_send() */
	int64_t res;	   /* bytes sent, or a negative errno */
	uint32_t flags;	   /* ARENA_ZC_COPIED ... */
	uint32_t reserved; /* 0 */
};

/* arena_zc_result.flags */
#define ARENA_ZC_COPIED (1u << 0)   /* the kernel copied the data, or part */
#define ARENA_ZC_FALLBACK (1u << 1) /* a copying send (so also COPIED) */
#define ARENA_ZC_UNREG (1u << 2)    /* zero-copy from unregistered memory */
#define ARENA_ZC_SHORT (1u << 3)    /* res < len: the socket failed midway */

/* arena_zc_mode(): how new sends go, exactly one of */
#define ARENA_ZC_MODE_FIXED (1u << 0) /* zero-copy from fixed buffers */
#define ARENA_ZC_MODE_ZC (1u << 1)    /* zero-copy, registration refused */
#define ARENA_ZC_MODE_COPY (1u << 2)  /* copying sends */
/* ... and what happened so far, any of */
#define ARENA_ZC_MODE_NORING (1u << 8)	  /* no io_uring: send(2) */
#define ARENA_ZC_MODE_SOCK_COPY (1u << 9) /* a socket refused zero-copy */
#define ARENA_ZC_MODE_COPIED (1u << 10)	  /* the kernel copied a ZC send */
#define ARENA_ZC_MODE_NOREPORT (1u << 11) /* kernel cannot tell COPIED */

#define ARENA_ZC_MAX_ENTRIES 32768u

/*
 * Open a zero-copy sender for client c with room for entries sends
 * (1..ARENA_ZC_MAX_ENTRIES) between arena_zc_send() and the collection of
 * their results.  A missing io_uring, or one that refuses to register the
 * memory, is not an error: see arena_zc_mode().
 *
 * Returns 0 and sets *out, or:
 *   -EINVAL   c or out is NULL, entries is out of range, or ARENA_ZC_FORCE
 *             holds an unknown value
 *   -ENOMEM   out of memory in this process
 */
ARENA_API int arena_zc_open(struct arena_client *c, unsigned entries,
			    struct arena_zc **out);

/*
 * Start sending bytes [offset, offset + len) of block h on sockfd (a
 * connected socket of any type, blocking or not; a datagram socket sends
 * one datagram).  The block is referenced until the kernel is done with
 * it; its result comes from arena_zc_complete() with tag.  Failures of the
 * send itself (-EPIPE, -ECONNRESET, ...) come in the result.  In
 * ARENA_ZC_MODE_NORING the send is done here, blocking until the socket
 * took every byte.
 *
 * Returns 0, or, with nothing sent and no reference kept:
 *   -EINVAL     z is NULL, len is 0, or h is not a handle of this region
 *   -ESTALE     the block was freed
 *   -ERANGE     offset + len is past the end of the block
 *   -EBADF      sockfd is not an open file descriptor
 *   -ENOTSOCK   sockfd is not a socket
 *               (these two cost a system call, so a socket with a send
 *               in flight, or the one checked last, is not checked again:
 *               one closed since then fails in its result instead)
 *   -EBUSY      entries sends await arena_zc_complete(): collect first
 *   -EPERM      the calling thread is not the one that opened z
 *   -EOVERFLOW, -ENOSPC  as arena_ref() reports them
 */
ARENA_API int arena_zc_send(struct arena_zc *z, int sockfd, arena_handle_t h,
			    size_t offset, size_t len, uint64_t tag);

/*
 * As arena_zc_send(), but the send waits in the ring until
 * arena_zc_flush(), arena_zc_complete() or the next arena_zc_send(), so
 * that a batch costs one system call.  Datagrams queued on one socket may
 * then be in flight together and, like UDP itself, leave out of order
 * when its send buffer is full; sends on a stream socket still go one at
 * a time, in order.  Returns what arena_zc_send() returns.
 */
ARENA_API int arena_zc_queue(struct arena_zc *z, int sockfd, arena_handle_t h,
			     size_t offset, size_t len, uint64_t tag);

/*
 * Start every queued send.  Returns 0, -EINVAL for NULL, or -EPERM when
 * the calling thread is not the one that opened z.
 */
ARENA_API int arena_zc_flush(struct arena_zc *z);

/*
 * Collect up to max results of finished sends, oldest first, waiting up
 * to timeout_ms (0: not at all, negative: without limit) for the first
 * when none is ready; queued sends start, and partial ones go on, on the
 * way.  A send is finished when the kernel has released its block, i.e.
 * after its notification; the library's reference is then dropped.
 *
 * Returns the number of results filled in: 0 on timeout, and at once when
 * no send is outstanding.  Or:
 *   -EINVAL   z is NULL, or results is NULL and max is not 0
 *   -EPERM    the calling thread is not the one that opened z
 *   -EINTR    a signal interrupted the wait (nothing was collected)
 */
ARENA_API int arena_zc_complete(struct arena_zc *z,
				struct arena_zc_result *results, unsigned max,
				int timeout_ms);

/* How sends go: ARENA_ZC_MODE_* bits; 0 for NULL. */
ARENA_API unsigned arena_zc_mode(const struct arena_zc *z);

/*
 * Close: drop results not yet collected, give sends in progress about a
 * second to finish, then cancel those still waiting for socket space and
 * wait as long again for the kernel to release their blocks.  A block it
 * still holds after that keeps its reference until the client
 * disconnects, as does every block in flight when another thread than
 * the opener closes.  To know that data went out, collect every result
 * first.  NULL is ignored.  Closing an io_uring makes the kernel run a
 * piece of its teardown in the closing thread some milliseconds later,
 * which fails a blocking call with a timeout that it interrupts (a recv()
 * with SO_RCVTIMEO) with EINTR; close waits up to 100 ms for it, so that
 * only a teardown delayed by sends still in the kernel can do that.
 */
ARENA_API void arena_zc_close(struct arena_zc *z);

/*
 * Zero-copy channels: named, bounded queues of handles in the region,
 * with any number of senders and receivers in any processes.  Only the
 * handle travels: a send moves one of the caller's references to the
 * block into the channel, a receive moves it to the receiver, who then
 * holds it like one taken with arena_ref() (and drops it with
 * arena_unref(), or sends it on).  Each message reaches exactly one
 * receiver, in the order each sender sent.  A queued handle keeps its
 * block alive; when every endpoint of a channel is closed (or its process
 * died) the daemon drops the references still queued.  Send and receive
 * are lock-free and never involve the daemon; opening and closing are
 * one round trip to it.
 */
struct arena_chan;

#define ARENA_CHAN_NAME_MAX 47u	       /* bytes of a channel name */
#define ARENA_CHAN_CAPACITY_MAX 65536u /* handles one channel holds */

/*
 * Create the channel called name, or join it if it exists (its capacity
 * then stays what its creator got).  A new channel holds capacity
 * handles, rounded up to a power of two (at least 2); see
 * arena_chan_capacity().
 *
 * Returns 0 and the endpoint in *out, or:
 *   -EINVAL        c, name or out is NULL, name is empty, or capacity is
 *                  0 or above ARENA_CHAN_CAPACITY_MAX
 *   -ENAMETOOLONG  name is longer than ARENA_CHAN_NAME_MAX bytes
 *   -ENFILE        the daemon's channel table is full (arenad --channels)
 *   -ENOSPC        no room for the ring (arenad --chan-cells)
 *   -EMFILE        this client has the channel open 65535 times
 *   -ENOMEM        out of memory (here or in the daemon)
 *   -ECHILD        c was inherited through fork()
 *   -ESHUTDOWN     the daemon is gone (it died or closed the connection)
 *   -ETIMEDOUT     the daemon did not answer within 10 s (stopped or
 *                  stuck); if it answers later the channel may have been
 *                  opened all the same, and stays open until
 *                  arena_disconnect
 *   -ENOTCONN      an earlier timeout cut a message in the middle: the
 *                  connection is out of step and every control call
 *                  fails (the data path still works)
 *   -EPROTO        the daemon answered something that makes no sense
 */
ARENA_API int arena_chan_open(struct arena_client *c, const char *name,
			      unsigned capacity, struct arena_chan **out);

/*
 * Give the endpoint back and free it (also on error); the last endpoint
 * of a channel releases the references still queued in it.
 *
 * Returns 0, or:
 *   -EINVAL      ch is NULL
 *   -ESHUTDOWN   the daemon is gone: the endpoint is freed here, and
 *                nobody releases what is queued any more
 *   -ETIMEDOUT   the daemon did not answer within 10 s; the endpoint
 *                stays open until arena_disconnect
 *   -ENOTCONN    the connection is out of step (see arena_chan_open)
 *   -EBADF, -EPROTO  the daemon did not know the endpoint, or answered
 *                something that makes no sense
 */
ARENA_API int arena_chan_close(struct arena_chan *ch);

/* Handles the channel holds at most; 0 for NULL. */
ARENA_API unsigned arena_chan_capacity(const struct arena_chan *ch);

/*
 * Move one of the caller's references to h into the channel: the
 * caller no longer holds it (do not unref it), the receiver will.
 *
 * Returns 0, or, with nothing changed:
 *   -EINVAL   ch is NULL, h is not a handle of this region, h is a
 *             block of the bump arena (not carried by channels yet),
 *             or this client holds no reference to h
 *   -ESTALE   the block was freed
 *   -EAGAIN   the channel is full
 *   -ENOSPC   this client's reference ledger is full
 *   -ECHILD   the client was inherited through fork()
 */
ARENA_API int arena_chan_send(struct arena_chan *ch, arena_handle_t h);

/*
 * As arena_chan_send(), but wait up to timeout_ms for room: 0 does not
 * wait, -1 waits without limit.  After a short spin the caller sleeps on
 * a futex in the region.  Returns what arena_chan_send() returns, with
 * -ETIMEDOUT instead of -EAGAIN when the time ran out (not before), and
 * -EINVAL also for a timeout below -1.
 */
ARENA_API int arena_chan_send_wait(struct arena_chan *ch, arena_handle_t h,
				   int timeout_ms);

/*
 * Take the oldest handle of the channel into *h; the caller now holds
 * one reference to its block.  timeout_ms 0 polls, -1 waits without
 * limit, otherwise waits up to timeout_ms, sleeping on a futex in the
 * region after a short spin.
 *
 * Returns 0, or, with nothing taken:
 *   -EINVAL     ch or h is NULL, or timeout_ms is below -1
 *   -EAGAIN     timeout_ms is 0 and the channel is empty
 *   -ETIMEDOUT  the channel stayed empty for timeout_ms (not less)
 *   -ENOSPC     this client's reference ledger is full
 *   -ECHILD     the client was inherited through fork()
 * or -EBADMSG when the channel held something that is no handle of this
 * region (only a client scribbling on the region can put it there); that
 * entry was taken out.
 */
ARENA_API int arena_chan_recv(struct arena_chan *ch, arena_handle_t *h,
			      int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif
