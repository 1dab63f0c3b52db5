#!/bin/sh
# Install the Debian packages the build, tests and benchmarks need, when
# any is missing.  Quiet and quick when everything is there.
set -e
# strace: tests/test_systemd.c checks the daemon's system calls against
# the units' SystemCallFilter= with it (skipped without).  libclang-rt-dev:
# clang's sanitizer and libFuzzer runtimes for make fuzz (only recommended
# by clang, so --no-install-recommends would leave it out)
PKGS="build-essential pkg-config liburing-dev libcmocka-dev libjemalloc-dev \
libmimalloc-dev clang clang-format strace libclang-rt-dev"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
