/* SPDX-License-Identifier: MIT */
/*
 * Daemon logging: one line per event on stderr, "arenad[pid]: level: msg".
 */
#ifndef ARENAD_LOG_H
#define ARENAD_LOG_H

enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_INFO = 2,
	LOG_DEBUG = 3,
};

extern enum log_level log_threshold;

/* The level is checked before anything is formatted. */
#define LOG(level, ...)                                                        \
	do {                                                                   \
		if ((level) <= log_threshold)                                  \
			log_write((level), __VA_ARGS__);                       \
	} while (0)

void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* "error", "warn", "info", "debug" -> level.  Returns 0 or -EINVAL. */
int log_level_parse(const char *name, enum log_level *out);

#endif
