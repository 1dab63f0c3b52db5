/* SPDX-License-Identifier: MIT */
/*
 * One control connection: its credentials, its client id once attached,
 * and a receive buffer that holds exactly one largest message.
 */
#ifndef ARENAD_PEER_H
#define ARENAD_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire.h"

#define PEER_BUF (sizeof(struct arena_proto_hdr) + ARENA_PROTO_MAX_PAYLOAD)

struct peer {
	int fd;
	int pidfd;     /* the connecting process, once attached; -1: none */
	uint32_t slot; /* index in the server's peer table */
	struct ucred cred;
	bool allowed;
	uint32_t client_id; /* 0 until HELLO succeeds */
	uint32_t len;	    /* bytes in buf */
	uint64_t since_ms;  /* when buf's incomplete message began; 0: none */
	uint8_t buf[PEER_BUF];
};

/* A peer for an accepted fd, or NULL (fd is then closed). */
struct peer *peer_new(int fd);

/*
 * A pidfd for the process that connected (SO_PEERPIDFD, else pidfd_open
 * of its SO_PEERCRED pid) into p->pidfd.  Returns 0; -ESRCH when that
 * process is gone already; -ENOSYS when the kernel offers no pidfd (the
 * socket's EOF is then the only sign of death), -EOPNOTSUPP when the
 * process is outside our pid namespace, or another -errno.
 */
int peer_pidfd_open(struct peer *p);

/* Has the connecting process exited?  Only with a pidfd. */
bool peer_pid_exited(const struct peer *p);

/* Close the connection and free p.  NULL is ignored. */
void peer_free(struct peer *p);

/* Read what is there: bytes read, 0 at EOF, -EAGAIN, or -errno. */
int peer_fill(struct peer *p);

/*
 * The next complete message: 1 with *h and *payload set (validated by the
 * proto decoders), 0 when more bytes are needed, or a negative errno for
 * a message that must close the connection; *why then says what was
 * wrong.
 */
int peer_next(struct peer *p, struct arena_proto_hdr *h,
	      const uint8_t **payload, const char **why);

/* Drop the message peer_next returned. */
void peer_consume(struct peer *p, const struct arena_proto_hdr *h);

/*
 * Send one message, with pass_fd attached (SCM_RIGHTS) when >= 0.  A
 * message is sent whole or not at all: a peer that does not read its
 * replies gets -EAGAIN and is dropped.  Returns 0 or a negative errno.
 */
int peer_send(struct peer *p, uint16_t type, uint32_t seq, const void *payload,
	      uint32_t len, int pass_fd);

#endif
