/* SPDX-License-Identifier: MIT */
/*
 * Crash points: numbered places in the library's shared-memory operations
 * where a client may be killed, for the crash-point injection test
 * (tests/test_crash*.c).  A normal build compiles them to nothing.  The
 * test build of the library (make's libarena-crash.a, compiled with
 * -DARENA_CRASHPOINTS) counts every crash point the process passes; when
 * the count reaches $ARENA_CRASH_AT the process kills itself with SIGKILL
 * on the spot, exactly as if it had been killed from outside between two
 * steps.  Put one between any two writes to the region that another
 * process could observe apart (before a claiming CAS, between the claim
 * and the ledger or tree step that follows it, and so on).
 */
#ifndef ARENA_PROTO_CRASHPOINT_H
#define ARENA_PROTO_CRASHPOINT_H

#ifdef ARENA_CRASHPOINTS
void arena_crashpoint(void);
/* Crash points passed so far by this process. */
unsigned long arena_crashpoints_passed(void);
/* Re-read $ARENA_CRASH_AT and restart the count (after fork()). */
void arena_crashpoint_arm(void);
#define ARENA_CRASHPOINT() arena_crashpoint()
#else
#define ARENA_CRASHPOINT()                                                     \
	do {                                                                   \
	} while (0)
#endif

#endif
