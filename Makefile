# cryo: checkpoint/restart for Linux process trees.
PREFIX ?= /usr/local
CC ?= gcc
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -Itools/cryo
LDLIBS_CRYO = -lelf -lxxhash
KVER ?= $(shell ls -1 /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(.*-amd64\)$$/\1/p' | grep -v cloud | sort -V | tail -n1)
KDIR ?= /usr/src/linux-headers-$(KVER)

ifeq ($(SANITIZE),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer
LDFLAGS += -fsanitize=address,undefined
endif

CRYO_SRCS = $(wildcard tools/cryo/*.c)
CRYO_OBJS = $(CRYO_SRCS:.c=.o)
PROG_SRCS = $(wildcard tests/progs/*.c)
PROGS = $(PROG_SRCS:.c=)
UNIT_TESTS = tests/unit/image_swap_test

.PHONY: all cryo progs test test-qemu bench module install clean demo

all: cryo progs $(UNIT_TESTS) demo/ticker

cryo: tools/cryo/cryo

tools/cryo/cryo: $(CRYO_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS_CRYO)

tools/cryo/%.o: tools/cryo/%.c $(wildcard tools/cryo/*.h) include/lx_ckpt.h
	$(CC) $(CFLAGS) -c -o $@ $<

progs: $(PROGS)

tests/progs/%: tests/progs/%.c tests/progs/scenario.h
	$(CC) $(CFLAGS) -Itests/progs -o $@ $< -lpthread

tests/unit/image_swap_test: tests/unit/image_swap_test.c tools/cryo/image.c tools/cryo/swap.c tools/cryo/err.c $(wildcard tools/cryo/*.h) include/lx_ckpt.h
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ tests/unit/image_swap_test.c tools/cryo/image.c tools/cryo/swap.c tools/cryo/err.c -lxxhash

test: all
	bats --tap tests/bats

demo/ticker: demo/ticker.c
	$(CC) $(CFLAGS) -o $@ $<

demo: all
	./demo/demo.sh

module:
	$(MAKE) -C fs/binfmt_cr KDIR=$(KDIR) W=1

test-qemu: all
	KVER=$(KVER) KDIR=$(KDIR) tests/qemu/run.sh

install: all
	install -D -m 0755 tools/cryo/cryo $(DESTDIR)$(PREFIX)/bin/cryo

clean:
	-$(MAKE) -C fs/binfmt_cr clean
	rm -f tools/cryo/*.o tools/cryo/cryo $(PROGS) $(UNIT_TESTS) demo/ticker
