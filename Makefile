# xcsreg: a C host embedding Lua 5.4. See README.md.
PKG_CONFIG ?= pkg-config
LUA_PC ?= lua5.4
PKGS = $(LUA_PC) libcjson yaml-0.1
# libcurl's headers only: src/curl_lazy.c loads the library when a script
# first needs it. Never link it (nor -rdynamic): see curl_lazy.c.
CURL_PC = libcurl
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/xcsreg
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
VERSION = $(shell sed -n 's/^\#define XCSREG_VERSION "\(.*\)"/\1/p' src/xcsreg.h)

CC ?= cc
CFLAGS ?= -O2 -g
WARNINGS = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wwrite-strings -Wno-unused-parameter
# make SAN=1: AddressSanitizer and UBSan (what `make test` builds)
SAN ?=
SANITIZERS = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SANFLAGS = $(if $(SAN),$(SANITIZERS))
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARNINGS) $(CPPFLAGS) $(CFLAGS) $(SANFLAGS) \
	$$($(PKG_CONFIG) --cflags $(PKGS) $(CURL_PC)) -Isrc
LIBS = $$($(PKG_CONFIG) --libs $(PKGS))

# Build directory; the sanitized build lives in build/san.
O ?= $(if $(SAN),build/san,build)
BIN ?= $(if $(SAN),$(O)/xcsreg,xcsreg)

SRCS = $(sort $(wildcard src/*.c))
LIB_OBJS = $(patsubst src/%.c,$(O)/%.o,$(filter-out src/main.c,$(SRCS))) $(O)/lua_bundle.o
LUA_FILES = $(sort $(shell find lua -name '*.lua'))
UNIT_TESTS = $(patsubst tests/unit/%.c,$(O)/unit/%,$(sort $(wildcard tests/unit/test_*.c)))

.PHONY: all deps install demo test unit-tests clean lint fuzz deb image
all: $(BIN)

# -ldl: curl_lazy.c's dlopen (in libc itself since glibc 2.34)
$(BIN): $(O)/main.o $(LIB_OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS) -ldl -lm

$(O)/%.o: src/%.c $(wildcard src/*.h) | $(O)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# The shipped Lua, as text and as bytecode (scripts/lua-bytecode.c: runs load
# their modules instead of compiling them).
$(O)/lua_bundle.c: $(LUA_FILES) scripts/embed-lua $(O)/lua-bytecode | $(O)
	LUA_BYTECODE=$(O)/lua-bytecode scripts/embed-lua $@ $(LUA_FILES)

$(O)/lua-bytecode: scripts/lua-bytecode.c | $(O)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIBS)

$(O)/lua_bundle.o: $(O)/lua_bundle.c src/xcsreg.h
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(O)/unit/%: tests/unit/%.c tests/unit/unit.h $(LIB_OBJS) | $(O)
	@mkdir -p $(O)/unit
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LIBS) -ldl -lm

unit-tests: $(UNIT_TESTS)

$(O):
	mkdir -p $(O)

deps:
	scripts/install-deps

# The binary, its man page and bash completion, the systemd units (not
# enabled; their paths made PREFIX's), the docs and the examples (the cron
# file, a site file). debian/rules installs the package with this target.
install: $(BIN)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)/examples/k8s
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/xcsreg
	install -m 644 doc/xcsreg.1 $(DESTDIR)$(MANDIR)/man1/xcsreg.1
	install -m 644 scripts/completion/xcsreg.bash $(DESTDIR)$(BASHCOMPDIR)/xcsreg
	for u in xcsreg.service xcsreg.timer; do \
		sed -e 's,/usr/local/bin/xcsreg,$(BINDIR)/xcsreg,g' \
		    -e 's,/usr/local/share/doc/xcsreg,$(DOCDIR),g' scripts/systemd/$$u \
			>$(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp && \
		mv $(DESTDIR)$(SYSTEMDUNITDIR)/$$u.tmp $(DESTDIR)$(SYSTEMDUNITDIR)/$$u || exit 1; \
	done
	install -m 644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 644 scripts/README.md $(DESTDIR)$(DOCDIR)/DEPLOYING.md
	install -m 644 scripts/cron/xcsreg.cron examples/registries.lua examples/namespaces-by-annotation.lua \
		examples/password-from-vault.lua examples/registries-by-label.lua examples/results-webhook.lua \
		$(DESTDIR)$(DOCDIR)/examples/
	install -m 644 scripts/k8s/*.yaml scripts/k8s/Containerfile $(DESTDIR)$(DOCDIR)/examples/k8s/

# build/deb/xcsreg_VERSION_ARCH.deb, with dpkg-buildpackage in a copy of the
# tree (it writes its results into the parent directory). No -dbgsym package.
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
deb:
	rm -rf build/deb && mkdir -p build/deb/src/xcsreg-$(VERSION)
	{ git ls-files --cached --others --exclude-standard 2>/dev/null || \
	  find . -path ./build -prune -o -path ./.git -prune -o -type f -print; } | \
		grep -v '^\(\./\)\?\(build/\|xcsreg$$\)' | tar -cf - -T - | tar -C build/deb/src/xcsreg-$(VERSION) -xf -
	cd build/deb/src/xcsreg-$(VERSION) && DEB_BUILD_OPTIONS="noautodbgsym $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -us -uc -b >../../build.log 2>&1 || { tail -40 ../../build.log; exit 1; }
	mv build/deb/src/xcsreg_$(VERSION)_$(DEB_ARCH).deb build/deb/
	rm -rf build/deb/src
	@echo "built build/deb/xcsreg_$(VERSION)_$(DEB_ARCH).deb"

# The container image of scripts/k8s/ from that package and Debian's mirror
# (mmdebstrap, buildah; no registry): IMAGE, default localhost/xcsreg:VERSION.
IMAGE ?= localhost/xcsreg:$(VERSION)
image: deb
	scripts/build-image build/deb/xcsreg_$(VERSION)_$(DEB_ARCH).deb $(IMAGE)

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
