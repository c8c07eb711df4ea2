# entrasync — build, test, sanitizer check, benchmarks, install.
# GNU make. Dependencies come from the system through pkg-config (vendor/deps.txt).

VERSION   := 0.1.0
PKGS      := lua5.4 libcurl libcjson sqlite3 openssl
PREFIX    ?= /usr/local
BUILD     ?= build
CC        ?= cc

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wpointer-arith -Wcast-qual -Wstrict-prototypes \
        -Wmissing-prototypes -Wwrite-strings -Wundef -Wvla -Wnull-dereference \
        -Wimplicit-fallthrough -Wno-unused-parameter
ifeq ($(CI),true)
WERROR := -Werror
endif
OPT      ?= -O2 -g
SANFLAGS :=
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      := -O1 -g
endif

CPPFLAGS += -D_GNU_SOURCE -DENTRASYNC_VERSION='"$(VERSION)"' -DENTRASYNC_PREFIX='"$(PREFIX)"' -Isrc -I$(BUILD)
CFLAGS   := -std=c17 $(OPT) $(WARN) $(WERROR) $(SANFLAGS) $(PKG_CFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LDLIBS   := $(PKG_LIBS) -lm

# one folder per layer (docs/architecture.md); src/tools holds build-time tools
SRCS      := $(sort $(wildcard $(addsuffix *.c,$(filter-out src/tools/,$(wildcard src/*/)))))
LIB_SRCS  := $(filter-out src/face/main.c,$(SRCS))
LUA_FILES := $(sort $(wildcard lua/entrasync/*.lua))
TEST_SRCS := $(sort $(wildcard tests/unit/*.c))
BENCH_SRCS:= $(filter-out tests/bench/replay_graph.c,$(sort $(wildcard tests/bench/*.c)))

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/lua_embed.o
MAIN_OBJ  := $(BUILD)/src/face/main.o
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/%.o)
BENCH_OBJS:= $(BENCH_SRCS:%.c=$(BUILD)/%.o)

.PHONY: all deps test check bench valgrind install clean report-demo
all: entrasync

# a new file renamed over the old one: a running entrasync (a daemon, a test)
# keeps the binary it started with instead of having its pages rewritten
entrasync: $(BUILD)/entrasync
	cp $< $@.new && mv -f $@.new $@

$(BUILD)/entrasync: $(LIB_OBJS) $(MAIN_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(LIB_OBJS) $(TEST_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench: $(LIB_OBJS) $(BENCH_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# The runtime's own Lua (lua/entrasync/*.lua) is compiled into the binary as text.
$(BUILD)/embedgen: src/tools/embedgen.c
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O1 $(WARN) -o $@ $<

$(BUILD)/lua_embed.c: $(BUILD)/embedgen $(LUA_FILES)
	$(BUILD)/embedgen $(LUA_FILES) > $@.tmp && mv $@.tmp $@

# Microsoft's SKU name table (vendor/skus.csv, one row per service plan) is
# reduced at build time to a SKU-level C table, committed as src/util/skus_table.c.
$(BUILD)/skugen: src/tools/skugen.c src/util/skus_trim.h
	@mkdir -p $(dir $@)
	$(CC) -std=c17 -O1 $(WARN) -o $@ $<

src/util/skus_table.c: vendor/skus.csv $(BUILD)/skugen
	$(BUILD)/skugen $< > $@.tmp && mv $@.tmp $@

$(BUILD)/lua_embed.o: $(BUILD)/lua_embed.c
	$(CC) $(CPPFLAGS) $(filter-out -Wmissing-prototypes,$(CFLAGS)) -c -o $@ $<

deps:
	@sh tests/install-deps.sh vendor/deps.txt

test: entrasync $(BUILD)/unit-tests
	@ENTRASYNC=$(abspath $(BUILD)/entrasync) UNIT_TESTS=$(abspath $(BUILD)/unit-tests) sh tests/run.sh

check:
	$(MAKE) BUILD=build/asan SAN=1 build/asan/entrasync build/asan/unit-tests
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:verify_asan_link_order=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 ENTRASYNC=$(abspath build/asan/entrasync) UNIT_TESTS=$(abspath build/asan/unit-tests) SANITIZED=1 sh tests/run.sh

valgrind: entrasync $(BUILD)/unit-tests
	@ENTRASYNC=$(abspath $(BUILD)/entrasync) UNIT_TESTS=$(abspath $(BUILD)/unit-tests) VALGRIND=1 sh tests/run.sh

bench: entrasync $(BUILD)/bench $(BUILD)/replay-graph
	@ENTRASYNC=$(abspath $(BUILD)/entrasync) BENCH=$(abspath $(BUILD)/bench) REPLAY_GRAPH=$(abspath $(BUILD)/replay-graph) sh tests/bench/run.sh

# The C server that replays a recorded fake Graph exchange (bench_pull.sh):
# standalone, libc + libcrypto only.
$(BUILD)/replay-graph: tests/bench/replay_graph.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)

# The HTML report of the bundled fakes rendered to a PNG with headless
# Chromium (apt-get install chromium), to look at.
report-demo: entrasync
	sh tests/report-demo.sh

install: entrasync
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/entrasync/lua/entrasync $(DESTDIR)$(PREFIX)/share/entrasync/policies
	install -m 0755 entrasync $(DESTDIR)$(PREFIX)/bin/entrasync
	install -m 0644 $(LUA_FILES) $(DESTDIR)$(PREFIX)/share/entrasync/lua/entrasync/
	if ls policies/*.lua >/dev/null 2>&1; then install -m 0644 policies/*.lua $(DESTDIR)$(PREFIX)/share/entrasync/policies/; fi
	install -d $(DESTDIR)$(PREFIX)/share/entrasync/policies/examples
	install -m 0644 policies/examples/*.lua $(DESTDIR)$(PREFIX)/share/entrasync/policies/examples/
	install -d $(DESTDIR)$(PREFIX)/share/entrasync/fakes
	install -m 0644 $(filter-out tests/fakes/test_%,$(wildcard tests/fakes/*.py)) $(DESTDIR)$(PREFIX)/share/entrasync/fakes/
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 docs/entrasync.1 $(DESTDIR)$(PREFIX)/share/man/man1/entrasync.1

clean:
	rm -rf build entrasync tests/tmp

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
