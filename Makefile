# arenad — plain Makefile.
#   make                 build/arenad, build/arenactl, build/libarena.{a,so}
#   make test            build and run the test suite (fresh daemon per file)
#   make chaos           the chaos test (tests/test_chaos.c) with
#                        CHAOS_KILLS=10000 random SIGKILLs of clients
#   make bench           benchmarks against glibc, jemalloc, mimalloc
#   make run             build and start arenad --size 1G in the foreground
#   make bench-report    benchmarks, then bench/results/report.md and plots
#   make install         PREFIX=/usr/local DESTDIR= (and the *DIR below);
#   make uninstall       removes what install put, with the same variables
#   SANITIZE=address,undefined | SANITIZE=thread   sanitizer build (own dir)
#   V=1                  show commands      WERROR=1   warnings are errors
#   CC=clang             another compiler

CC ?= cc
PREFIX ?= /usr/local
SANITIZE ?=
V ?= 0
WERROR ?= $(if $(CI),1,0)

ifeq ($(SANITIZE),)
BUILD ?= build
else
BUILD ?= build/san-$(subst $(comma),-,$(SANITIZE))
endif
comma := ,

Q := $(if $(filter 1,$(V)),,@)
msg = $(if $(filter 1,$(V)),,@printf '  %-7s %s\n' $(1) $(2);)

WARN := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
	-Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
OPT := -O2 -g
ifneq ($(SANITIZE),)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE)
endif
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -pthread $(OPT) $(WARN) \
	-Iinclude -Iproto $(CFLAGS)
LDFLAGS_ALL := -pthread $(if $(SANITIZE),-fsanitize=$(SANITIZE)) $(LDFLAGS)
# libarena's own dependencies (lib/zc.c); static users need them too
LIB_LIBS := -luring

PROTO_SRC := $(wildcard proto/*.c)
LIB_SRC := $(wildcard lib/*.c)
CORE_SRC := $(filter-out daemon/arenad.c daemon/arenactl.c,$(wildcard daemon/*.c))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_COMMON := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))
BENCH_SRC := $(wildcard bench/bench_*.c)

LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC) $(PROTO_SRC))
LIB_PIC := $(patsubst %.c,$(BUILD)/pic/%.o,$(LIB_SRC) $(PROTO_SRC))
CORE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(CORE_SRC))
TESTCOM_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_COMMON))
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

SOVERSION := 0
LIBVERSION := 0.1.0

all: $(BUILD)/arenad $(BUILD)/arenactl $(BUILD)/libarena.a \
	$(BUILD)/libarena.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -fvisibility=hidden -MMD -MP -c $< -o $@

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

$(BUILD)/libarena.a: $(LIB_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libarena.so: $(LIB_PIC) lib/libarena.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,libarena.so.$(SOVERSION) \
		-Wl,--version-script=lib/libarena.map -o $@ $(LIB_PIC) \
		$(LDFLAGS_ALL) $(LIB_LIBS)

$(BUILD)/libarenad-core.a: $(CORE_OBJ) $(patsubst %.c,$(BUILD)/obj/%.o,$(PROTO_SRC))
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/arenad: $(BUILD)/obj/daemon/arenad.o $(BUILD)/libarenad-core.a
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL)

$(BUILD)/arenactl: $(BUILD)/obj/daemon/arenactl.o $(BUILD)/libarenad-core.a
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTCOM_OBJ) $(BUILD)/libarena.a \
		$(BUILD)/libarenad-core.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIB_LIBS) -lcmocka

# The crash-point build of the library (proto/crashpoint.h), linked into
# tests/test_crash*.c instead of libarena.a.
CRASH_OBJ := $(patsubst %.c,$(BUILD)/crash/%.o,$(LIB_SRC) $(PROTO_SRC))

$(BUILD)/crash/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -DARENA_CRASHPOINTS -fvisibility=hidden -MMD \
		-MP -c $< -o $@

$(BUILD)/libarena-crash.a: $(CRASH_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# (static pattern rules: a plain % stem cannot be empty, test_crash.c's is)
CRASH_TESTS := $(filter $(BUILD)/tests/test_crash%,$(TESTS))

$(CRASH_TESTS): $(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TESTCOM_OBJ) \
		$(BUILD)/libarena-crash.a $(BUILD)/libarenad-core.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIB_LIBS) -lcmocka

$(patsubst $(BUILD)/tests/%,$(BUILD)/obj/tests/%.o,$(CRASH_TESTS)): \
	CFLAGS_ALL += -DARENA_CRASHPOINTS

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/obj/bench/common.o \
		$(BUILD)/libarena.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIB_LIBS)

# bench_reclaim starts its daemon and reads STATS with the tests' helpers
$(BUILD)/bench/bench_reclaim: $(BUILD)/obj/bench/bench_reclaim.o \
		$(BUILD)/obj/tests/harness.o $(BUILD)/obj/tests/tstat.o \
		$(BUILD)/libarena.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) $(LIB_LIBS)

# tests and benches may include private headers of both sides
$(BUILD)/obj/tests/%.o $(BUILD)/obj/bench/%.o: \
	CFLAGS_ALL += -Ilib -Idaemon -Itests

deps:
	$(Q)scripts/deps.sh

tests: all $(TESTS)

test: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)tests/run.sh $(BUILD) $(TESTS)

# The chaos test at length: CHAOS_KILLS kills (make test runs 200).
CHAOS_KILLS ?= 10000
CHAOS_TIMEOUT ?= 36000
chaos: deps
	$(Q)$(MAKE) --no-print-directory all $(BUILD)/tests/test_chaos
	$(Q)CHAOS_KILLS=$(CHAOS_KILLS) ARENA_TEST_TIMEOUT=$(CHAOS_TIMEOUT) \
		tests/run.sh $(BUILD) $(BUILD)/tests/test_chaos

bench: deps all $(BENCHES)
	$(Q)bench/run.sh $(BUILD)

run: deps all
	$(BUILD)/arenad --size 1G

bench-report: deps all $(BENCHES)
	$(Q)bench/report.sh $(BUILD)

# ---- install: programs, library, header, pkg-config, man pages, units ----
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/arenad
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR ?= /etc

MANPAGES := $(wildcard man/man*/*.[0-9])
UNITS := $(wildcard systemd/*.service systemd/*.socket)
REALNAME := libarena.so.$(LIBVERSION)
SONAME := libarena.so.$(SOVERSION)
CONF := $(DESTDIR)$(SYSCONFDIR)/arenad/arenad.conf
# the units name /usr/local/sbin and /etc; the pc file is prefix-relative
UNIT_SED = -e 's|/usr/local/sbin/|$(SBINDIR)/|' \
	-e 's|/etc/arenad/|$(SYSCONFDIR)/arenad/|'
PC_SED = -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIBVERSION)|' \
	-e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${exec_prefix}/%,$(LIBDIR))|' \
	-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|' \
	-e 's|@LIBS_PRIVATE@|-pthread $(LIB_LIBS)|'

install: all
	$(call msg,INSTALL,$(DESTDIR)$(PREFIX))
	$(Q)install -d $(addprefix $(DESTDIR),$(BINDIR) $(SBINDIR) $(LIBDIR) \
		$(INCLUDEDIR)/arena $(PKGCONFIGDIR) $(DOCDIR) $(SYSUSERSDIR) \
		$(SYSTEMDUNITDIR) $(MANDIR)/man1 $(MANDIR)/man3 $(MANDIR)/man8)
	$(Q)install -m 0755 $(BUILD)/arenad $(DESTDIR)$(SBINDIR)/arenad
	$(Q)install -m 0755 $(BUILD)/arenactl $(DESTDIR)$(BINDIR)/arenactl
	$(Q)install -m 0755 $(BUILD)/libarena.so $(DESTDIR)$(LIBDIR)/$(REALNAME)
	$(Q)ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libarena.so
	$(Q)install -m 0644 $(BUILD)/libarena.a $(DESTDIR)$(LIBDIR)/libarena.a
	$(Q)install -m 0644 include/arena/arena.h $(DESTDIR)$(INCLUDEDIR)/arena/
	$(Q)sed $(PC_SED) arena.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/arena.pc
	$(Q)for m in $(MANPAGES); do \
		install -m 0644 $$m $(DESTDIR)$(MANDIR)/$${m#man/} || exit; done
	$(Q)for u in $(UNITS); do sed $(UNIT_SED) $$u \
		>$(DESTDIR)$(SYSTEMDUNITDIR)/$${u#systemd/} || exit; done
	$(Q)install -m 0644 systemd/arenad.sysusers \
		$(DESTDIR)$(SYSUSERSDIR)/arenad.conf
	$(Q)install -m 0644 systemd/arenad.conf.example $(DESTDIR)$(DOCDIR)/
	$(Q)[ -e $(CONF) ] || install -D -m 0644 systemd/arenad.conf.example \
		$(CONF)

uninstall:
	$(call msg,UNINST,$(DESTDIR)$(PREFIX))
	$(Q)rm -f $(DESTDIR)$(SBINDIR)/arenad $(DESTDIR)$(BINDIR)/arenactl \
		$(addprefix $(DESTDIR)$(LIBDIR)/,$(REALNAME) $(SONAME) \
			libarena.so libarena.a) \
		$(DESTDIR)$(INCLUDEDIR)/arena/arena.h \
		$(DESTDIR)$(PKGCONFIGDIR)/arena.pc \
		$(patsubst man/%,$(DESTDIR)$(MANDIR)/%,$(MANPAGES)) \
		$(patsubst systemd/%,$(DESTDIR)$(SYSTEMDUNITDIR)/%,$(UNITS)) \
		$(DESTDIR)$(SYSUSERSDIR)/arenad.conf \
		$(DESTDIR)$(DOCDIR)/arenad.conf.example
	$(Q)if cmp -s systemd/arenad.conf.example $(CONF); then \
		rm -f $(CONF); elif [ -e $(CONF) ]; then \
		echo "uninstall: keeping $(CONF): it was changed"; fi
	$(Q)rmdir $(addprefix $(DESTDIR),$(INCLUDEDIR)/arena $(DOCDIR) \
		$(SYSCONFDIR)/arenad) 2>/dev/null || true

format-check:
	$(Q)clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build

.PHONY: all deps tests test chaos bench bench-report run install uninstall clean \
	format-check
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- fuzzing: libFuzzer targets tests/fuzz/fuzz_*.c, built with clang ----
#   make fuzz [FUZZ_TIME=60]   build each under ASan+UBSan and run it for
#                              FUZZ_TIME seconds (tests/fuzz/run.sh)
FUZZ_TIME ?= 60
FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
	$(WARN) -Iinclude -Iproto -Idaemon $(FUZZ_SAN)
# config.c is left out: the targets that need it include it (fuzz_config.c)
FUZZ_LIB_SRC := $(PROTO_SRC) $(filter-out daemon/config.c,$(CORE_SRC)) \
	$(filter-out tests/fuzz/fuzz_%.c,$(wildcard tests/fuzz/*.c))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,\
	$(wildcard tests/fuzz/fuzz_*.c))

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZCC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP \
		-c $< -o $@

$(FUZZ_BUILD)/libfuzz.a: $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LIB_SRC))
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o \
		$(FUZZ_BUILD)/libfuzz.a
	$(call msg,LD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^

fuzz-build: $(FUZZ_BINS)

fuzz: deps
	$(Q)$(MAKE) --no-print-directory fuzz-build
	$(Q)tests/fuzz/run.sh $(FUZZ_TIME) $(FUZZ_BINS)

.PHONY: fuzz fuzz-build
-include $(shell find $(FUZZ_BUILD) -name '*.d' 2>/dev/null)
