// SPDX-License-Identifier: MIT
/*
 * parse_size(): the sizes arenad accepts on its command line.  Every
 * rejected form must leave *out untouched and say -EINVAL (malformed,
 * zero) or -ERANGE (too large for 64 bits).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "size.h"

#define SENTINEL 0x5a5a5a5a5a5a5a5aULL

static void expect_ok(const char *s, uint64_t want)
{
	uint64_t v = SENTINEL;

	if (parse_size(s, &v) != 0 || v != want)
		fail_msg("parse_size(\"%s\") = %llu, want %llu", s,
			 (unsigned long long)v, (unsigned long long)want);
}

static void expect_err(const char *s, int err)
{
	uint64_t v = SENTINEL;
	int rc = parse_size(s, &v);

	if (rc != err || v != SENTINEL)
		fail_msg("parse_size(\"%s\") = %d, want %d, out untouched", s,
			 rc, err);
}

static void test_plain(void **state)
{
	expect_ok("1", 1);
	expect_ok("4096", 4096);
	expect_ok("0001", 1);
	expect_ok("18446744073709551615", UINT64_MAX);
}

static void test_suffixes(void **state)
{
	expect_ok("1K", 1024);
	expect_ok("1k", 1024);
	expect_ok("64M", 64ULL << 20);
	expect_ok("64m", 64ULL << 20);
	expect_ok("1G", 1ULL << 30);
	expect_ok("3g", 3ULL << 30);
	expect_ok("2T", 2ULL << 40);
	expect_ok("2t", 2ULL << 40);
}

static void test_byte_forms(void **state)
{
	expect_ok("100B", 100);
	expect_ok("100b", 100);
	expect_ok("1KB", 1024);
	expect_ok("1kb", 1024);
	expect_ok("1KiB", 1024);
	expect_ok("64MiB", 64ULL << 20);
	expect_ok("1gib", 1ULL << 30);
	expect_ok("1GIB", 1ULL << 30);
	expect_err("1iB", -EINVAL);
	expect_err("1Ki", -EINVAL);
	expect_err("1KBB", -EINVAL);
	expect_err("1KiBx", -EINVAL);
	expect_err("1BB", -EINVAL);
}

static void test_zero(void **state)
{
	expect_err("0", -EINVAL);
	expect_err("000", -EINVAL);
	expect_err("0K", -EINVAL);
	expect_err("0GiB", -EINVAL);
}

static void test_overflow(void **state)
{
	expect_err("18446744073709551616", -ERANGE);
	expect_err("99999999999999999999999", -ERANGE);
	expect_err("16777216T", -ERANGE); /* exactly 2^64 */
	expect_ok("16777215T", 16777215ULL << 40);
	expect_err("17179869184G", -ERANGE);
	expect_err("99999999999999999999999K", -ERANGE);
	/* syntax is checked before range: garbage stays garbage */
	expect_err("99999999999999999999999x", -EINVAL);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"",   "K",  "B",  "abc",   "1.5G",  "0x10", "1KK", "1E",  "1P",
		"-1", "+1", "-0", "1,000", "1_000", "1K2",  "G1",  "1MK",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_err(bad[i], -EINVAL);
}

static void test_whitespace(void **state)
{
	expect_err(" 1K", -EINVAL);
	expect_err("1K ", -EINVAL);
	expect_err("1 K", -EINVAL);
	expect_err("\t64M", -EINVAL);
	expect_err("64M\n", -EINVAL);
	expect_err(" ", -EINVAL);
}

static void test_null(void **state)
{
	uint64_t v = SENTINEL;

	assert_int_equal(parse_size(NULL, &v), -EINVAL);
	assert_true(v == SENTINEL);
	assert_int_equal(parse_size("1K", NULL), -EINVAL);
}

static void test_human(void **state)
{
	char b[SIZE_HUMAN_MAX];

	assert_string_equal(size_human(512, b), "512 B");
	assert_string_equal(size_human(4096, b), "4.0 KiB");
	assert_string_equal(size_human(64ULL << 20, b), "64.0 MiB");
	assert_string_equal(size_human(3ULL << 29, b), "1.5 GiB");
	assert_string_equal(size_human(UINT64_MAX, b), "16.0 EiB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_suffixes),
		cmocka_unit_test(test_byte_forms),
		cmocka_unit_test(test_zero),
		cmocka_unit_test(test_overflow),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_null),
		cmocka_unit_test(test_human),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
