# arenad — plain Makefile.
#   make                 build/arenad, build/arenactl, build/libarena.{a,so}
#   make test            build and run the test suite (fresh daemon per file)
#   make bench           benchmarks against glibc, jemalloc, mimalloc
#   make run             build and start arenad --size 1G in the foreground
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
		$(LDFLAGS_ALL)

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
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL) -lcmocka

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(BUILD)/libarena.a
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) -o $@ $^ $(LDFLAGS_ALL)

# tests and benches may include private headers of both sides
$(BUILD)/obj/tests/%.o $(BUILD)/obj/bench/%.o: \
	CFLAGS_ALL += -Ilib -Idaemon -Itests

deps:
	$(Q)scripts/deps.sh

tests: all $(TESTS)

test: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)tests/run.sh $(BUILD) $(TESTS)

bench: deps all $(BENCHES)
	$(Q)bench/run.sh $(BUILD)

run: deps all
	$(BUILD)/arenad --size 1G

format-check:
	$(Q)clang-format --dry-run -Werror $(shell git ls-files '*.c' '*.h')

clean:
	rm -rf build

.PHONY: all deps tests test bench run clean format-check
.SECONDARY:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
