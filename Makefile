# cryo: checkpoint/restart for Linux process trees.
PREFIX ?= /usr/local
CC ?= gcc
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Itools/cryo
LDLIBS_CRYO = -lelf -lxxhash
# static cryo for the qemu guest (no shared libraries there): libelf.a needs zlib
LDLIBS_CRYO_STATIC = -lelf -lz -lxxhash
KVER ?= $(shell ls -1 /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(.*-amd64\)$$/\1/p' | grep -v cloud | sort -V | tail -n1)
KDIR ?= /usr/src/linux-headers-$(KVER)

CRYO_SRCS = $(wildcard tools/cryo/*.c)
CRYO_OBJS = $(CRYO_SRCS:.c=.o)
PROG_SRCS = $(wildcard tests/progs/*.c)
PROGS = $(PROG_SRCS:.c=)
UNIT_TESTS = tests/unit/image_swap_test
# static builds of the scenario programs the qemu guest suite runs
# (tests/qemu/guest-tests.sh; built by tests/qemu/run.sh)
GUEST_PROGS_DIR = tests/qemu/.cache/progs
GUEST_PROG_NAMES = counter heap guards privmap files procstate piperead sleeper cmdline \
	threads2 evfd tree eventfds pipes unixsk epollset timerfds sigfd unlinked memfds inot \
	tcplisten locks sigstate timers threads8 manythreads
GUEST_PROGS = $(GUEST_PROG_NAMES:%=$(GUEST_PROGS_DIR)/%)

.PHONY: all cryo progs static guest-progs test test-qemu bench module install clean demo soak

all: cryo progs $(UNIT_TESTS) demo/ticker tests/tools/reaper

cryo: tools/cryo/cryo

tools/cryo/cryo: $(CRYO_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_CRYO)

# the same objects, linked statically: the guest's /usr/local/bin/cryo
tools/cryo/cryo.static: $(CRYO_OBJS)
	$(CC) $(LDFLAGS) -static -o $@ $^ $(LDLIBS_CRYO_STATIC)

static: tools/cryo/cryo.static guest-progs

tools/cryo/%.o: tools/cryo/%.c $(wildcard tools/cryo/*.h) include/lx_ckpt.h
	$(CC) $(CFLAGS) -c -o $@ $<

progs: $(PROGS)

tests/progs/%: tests/progs/%.c tests/progs/scenario.h
	$(CC) $(CFLAGS) -Itests/progs -o $@ $< -lpthread

guest-progs: $(GUEST_PROGS)

$(GUEST_PROGS_DIR)/%: tests/progs/%.c tests/progs/scenario.h
	@mkdir -p $(GUEST_PROGS_DIR)
	$(CC) $(CFLAGS) -static -Itests/progs -o $@ $< -lpthread

tests/unit/image_swap_test: tests/unit/image_swap_test.c tools/cryo/image.c tools/cryo/swap.c tools/cryo/err.c tools/cryo/progress.c $(wildcard tools/cryo/*.h) include/lx_ckpt.h
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/unit/image_swap_test.c tools/cryo/image.c tools/cryo/swap.c tools/cryo/err.c tools/cryo/progress.c -lxxhash

tests/tools/reaper: tests/tools/reaper.c
	$(CC) $(CFLAGS) -o $@ $<

# under a subreaper: orphans of killed test trees are reaped at once
# (SANITIZE=1: the same as make test-sanitize)
ifeq ($(SANITIZE),1)
test: test-sanitize
else
test: all
	tests/tools/reaper bats --tap tests/bats
endif

# ---- sanitizer suite (issue #9): ASan+UBSan cryo, built apart from the
# normal objects (build/san), runs every bats suite but the qemu one (which
# uses the static build). A finding is fatal: UBSan does not recover, and both
# exit with status 86 (never cryo's own 1, which refusal tests expect) after
# a report on stderr.
SAN_FLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
SAN_DIR = build/san
SAN_OBJS = $(CRYO_SRCS:tools/cryo/%.c=$(SAN_DIR)/%.o)
SAN_ENV = ASAN_OPTIONS=exitcode=86:abort_on_error=0:detect_leaks=1:log_path=stderr \
	UBSAN_OPTIONS=halt_on_error=1:exitcode=86:print_stacktrace=1 LSAN_OPTIONS=exitcode=86
SAN_BATS = $(filter-out tests/bats/qemu.bats,$(wildcard tests/bats/*.bats))

.PHONY: cryo-san test-sanitize
cryo-san: tools/cryo/cryo-san

tools/cryo/cryo-san: $(SAN_OBJS)
	$(CC) $(LDFLAGS) $(SAN_FLAGS) -o $@ $^ $(LDLIBS_CRYO)

$(SAN_DIR)/%.o: tools/cryo/%.c $(wildcard tools/cryo/*.h) include/lx_ckpt.h
	@mkdir -p $(SAN_DIR)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

test-sanitize: all tools/cryo/cryo-san
	$(SAN_ENV) CRYO=$(CURDIR)/tools/cryo/cryo-san FUZZ_SMOKE_SECONDS=$${FUZZ_SMOKE_SECONDS:-5} \
		SOAK_CYCLES=$${SOAK_CYCLES:-5} tests/tools/reaper bats --tap $(SAN_BATS)

# soak (issue #9): SOAK_CYCLES dump/restore cycles (tests/soak/soak.sh)
SOAK_CYCLES ?= 200
soak: cryo progs tests/tools/reaper
	SOAK_CYCLES=$(SOAK_CYCLES) tests/tools/reaper tests/soak/soak.sh

# benchmark suite (bench/REPORT.md): BENCH_QUICK=1 for a short run, CRIU=path to compare
BENCH_BINS = bench/bin/bench bench/bin/workload bench/bin/basedump bench/bin/baserestore \
	bench/bin/startup

bench/bin/%: bench/%.c
	@mkdir -p bench/bin
	$(CC) $(CFLAGS) -o $@ $< -lpthread -lm

bench: cryo $(BENCH_BINS)
	bench/run.sh

demo/ticker: demo/ticker.c
	$(CC) $(CFLAGS) -o $@ $<

demo: all
	./demo/demo.sh

module:
	$(MAKE) -C fs/binfmt_cr KDIR=$(KDIR) W=1

test-qemu: all static
	KVER=$(KVER) KDIR=$(KDIR) tests/qemu/run.sh

install: all
	install -D -m 0755 tools/cryo/cryo $(DESTDIR)$(PREFIX)/bin/cryo
	install -D -m 0644 man/cryo.1 $(DESTDIR)$(PREFIX)/share/man/man1/cryo.1

clean:
	-$(MAKE) -C fs/binfmt_cr clean
	rm -f tools/cryo/*.o tools/cryo/cryo tools/cryo/cryo.static tools/cryo/cryo-san $(PROGS) $(UNIT_TESTS) demo/ticker tests/tools/reaper
	rm -rf $(GUEST_PROGS_DIR) $(SAN_DIR)

# ---- fuzzing (issue #9): libFuzzer targets in tests/fuzz, built with clang
FUZZ_CC ?= clang
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-D_GNU_SOURCE -Iinclude -Itools/cryo -Itests/fuzz
FUZZ_IMAGE_SRCS = tools/cryo/image.c tools/cryo/err.c tools/cryo/show.c tools/cryo/swap.c \
	tools/cryo/progress.c tools/cryo/pack.c tools/cryo/options.c
FUZZ_BINS = tests/fuzz/bin/fuzz_validate tests/fuzz/bin/fuzz_image

.PHONY: fuzz fuzz-short fuzz-build

fuzz-build: $(FUZZ_BINS)

tests/fuzz/bin/fuzz_validate: tests/fuzz/fuzz_validate.c tests/fuzz/fixcrc.h include/lx_ckpt.h
	@mkdir -p tests/fuzz/bin
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_validate.c

tests/fuzz/bin/fuzz_image: tests/fuzz/fuzz_image.c tests/fuzz/fixcrc.h $(FUZZ_IMAGE_SRCS) \
		$(wildcard tools/cryo/*.h) include/lx_ckpt.h
	@mkdir -p tests/fuzz/bin
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_image.c $(FUZZ_IMAGE_SRCS) -lxxhash

# each target for FUZZ_SECONDS (default 10 minutes); fuzz-short: about 30 s each
FUZZ_SECONDS ?= 600
FUZZ_SHORT_SECONDS ?= 30
fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS)

fuzz-short: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SHORT_SECONDS)
