# xcsreg: a C host embedding Lua 5.4. See README.md.
PKG_CONFIG ?= pkg-config
LUA_PC ?= lua5.4
PKGS = $(LUA_PC) libcjson yaml-0.1
# libcurl's headers only: src/curl_lazy.c loads the library when a script
# first needs it. Never link it (nor -rdynamic): see curl_lazy.c.
CURL_PC = libcurl
PREFIX ?= /usr/local

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wwrite-strings -Wno-unused-parameter
# make SAN=1: AddressSanitizer and UBSan (what `make test` builds)
SAN ?=
SANITIZERS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SANFLAGS = $(if $(SAN),$(SANITIZERS))
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CFLAGS) $(SANFLAGS) \
	$$($(PKG_CONFIG) --cflags $(PKGS) $(CURL_PC)) -Isrc
LIBS = $$($(PKG_CONFIG) --libs $(PKGS))

# Build directory; the sanitized build lives in build/san.
O ?= $(if $(SAN),build/san,build)
BIN ?= $(if $(SAN),$(O)/xcsreg,xcsreg)

SRCS = $(sort $(wildcard src/*.c))
LIB_OBJS = $(patsubst src/%.c,$(O)/%.o,$(filter-out src/main.c,$(SRCS))) $(O)/lua_bundle.o
LUA_FILES = $(sort $(shell find lua -name '*.lua'))
UNIT_TESTS = $(patsubst tests/unit/%.c,$(O)/unit/%,$(sort $(wildcard tests/unit/test_*.c)))

.PHONY: all deps install demo test unit-tests clean lint fuzz
all: $(BIN)

# -ldl: curl_lazy.c's dlopen (in libc itself since glibc 2.34)
$(BIN): $(O)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS) -ldl -lm

$(O)/%.o: src/%.c $(wildcard src/*.h) | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/lua_bundle.c: $(LUA_FILES) scripts/embed-lua | $(O)
	scripts/embed-lua $@ $(LUA_FILES)

$(O)/lua_bundle.o: $(O)/lua_bundle.c src/xcsreg.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/unit/%: tests/unit/%.c tests/unit/unit.h $(LIB_OBJS) | $(O)
	@mkdir -p $(O)/unit
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LIBS) -ldl -lm

unit-tests: $(UNIT_TESTS)

$(O):
	mkdir -p $(O)

deps:
	scripts/install-deps

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/xcsreg

# The README's two commands.
demo: deps
	$(MAKE) all
	scripts/demo

test: deps
	$(MAKE) all
	$(MAKE) SAN=1 all unit-tests
	scripts/lint
	XCSREG=build/san/xcsreg XCSREG_PLAIN=$(CURDIR)/xcsreg UNIT_DIR=build/san/unit tests/run

lint: deps
	$(MAKE) all
	scripts/lint

# Long fuzzing runs (make test fuzzes each target for a few seconds).
FUZZ_SECONDS ?= 300
fuzz: deps
	scripts/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build xcsreg
