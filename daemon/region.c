// SPDX-License-Identifier: MIT
/*
 * Region creation.  A memfd has no name in any file system, so nothing can
 * be left in /dev/shm whatever happens to the daemon; the region lives as
 * long as the daemon or any client holds the fd or a mapping.  fallocate()
 * reserves every page up front, so a machine without the memory fails
 * here, at start, with a message, rather than with SIGBUS in some client
 * later.  Seals stop anyone from shrinking or growing the file under the
 * mappings of other processes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "region.h"
#include "size.h"

#define REGION_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static int fail(const char *step, uint64_t size, int err)
{
	char b[SIZE_HUMAN_MAX];

	fprintf(stderr, "arenad: cannot create the %s region: %s: %s\n",
		size_human(size, b), step, strerror(err));
	return -err;
}

/*
 * Refuse sizes past RAM plus swap: shmem fallocate() of more than the
 * machine has may invoke the OOM killer instead of returning ENOMEM.
 */
static int size_check(uint64_t size)
{
	struct sysinfo si;
	uint64_t total;

	if (size > (uint64_t)INT64_MAX)
		return fail("size", size, EFBIG);
	if (sysinfo(&si))
		return 0;
	if (__builtin_mul_overflow((uint64_t)si.totalram + si.totalswap,
				   (uint64_t)si.mem_unit, &total))
		return 0;
	if (size > total)
		return fail("larger than this machine's memory", size, ENOMEM);
	return 0;
}

static int memfd_setup(uint64_t size, int *out)
{
	const char *step = "ftruncate";
	int fd, err;

	fd = memfd_create("arenad", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return fail("memfd_create", size, errno);
	if (ftruncate(fd, (off_t)size))
		goto err_close;
	step = "reserving memory (fallocate)";
	if (fallocate(fd, 0, 0, (off_t)size))
		goto err_close;
	step = "sealing";
	if (fcntl(fd, F_ADD_SEALS, REGION_SEALS))
		goto err_close;
	*out = fd;
	return 0;
err_close:
	err = errno;
	close(fd);
	return fail(step, size, err);
}

static int instance_new(uint64_t *out)
{
	ssize_t n = getrandom(out, sizeof(*out), 0);

	if (n != (ssize_t)sizeof(*out))
		return -(n < 0 ? errno : EIO);
	return 0;
}

int region_create(const struct layout *l, struct region *r)
{
	int rc;

	rc = size_check(l->size);
	if (!rc)
		rc = memfd_setup(l->size, &r->fd);
	if (rc)
		return rc;
	r->size = l->size;
	r->base = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd,
		       0);
	if (r->base == MAP_FAILED) {
		rc = fail("mmap", r->size, errno);
		goto err_close;
	}
	rc = instance_new(&r->instance);
	if (rc) {
		fail("getrandom", r->size, -rc);
		goto err_unmap;
	}
	layout_write(l, r->base, r->instance, (uint64_t)getpid());
	return 0;
err_unmap:
	munmap(r->base, r->size);
err_close:
	close(r->fd);
	return rc;
}

void region_destroy(struct region *r)
{
	if (r->base && r->base != MAP_FAILED)
		munmap(r->base, r->size);
	if (r->fd >= 0)
		close(r->fd);
	r->base = NULL;
	r->fd = -1;
}
