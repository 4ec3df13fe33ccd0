# ucache - a plain Makefile: explicit source lists, -MMD dependencies,
# pkg-config for every library.  Targets: all test bench asan demo install
# clean deps.  Outputs go under build/ (build/asan/ for the sanitizer build).

prefix  ?= /usr/local
DESTDIR ?=
# make install: the systemd unit, the docs and the settings file go here
unitdir    ?= $(prefix)/lib/systemd/system
docdir     ?= $(prefix)/share/doc/ucache
sysconfdir ?= /etc
BUILD   ?= build

CC      ?= cc
PKGS     = ucx libxxhash libcurl libcrypto libxml-2.0 libibverbs json-c liburing
# libfabric: its headers only - the library loads it when the ofi backend is
# first used (transport/ofi_lib.c), so a program reading over UCX never does
OFI_PKGS = libfabric
TEST_PKGS = cunit

CSTD     = -std=c11 -D_GNU_SOURCE
WARN     = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wno-missing-field-initializers
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -fPIC -pthread -I. -Iinclude -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) $(OFI_PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -ldl
# transport/ucx_guard.c replaces three UCX functions for libucp and libuct:
# a program that links libucache-rdma.a must export them (the .so does)
LDLIBS  += -Wl,--export-dynamic-symbol=ucp_request_send_state_ff \
           -Wl,--export-dynamic-symbol=uct_tcp_sockcm_ep_send \
           -Wl,--export-dynamic-symbol=uct_tcp_ep_handle_io_err
TEST_CFLAGS = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
HTTPD_PKGS  = libmicrohttpd
HTTPD_LIBS  = $(shell pkg-config --libs $(HTTPD_PKGS) 2>/dev/null)
FUSE_PKGS   = fuse3
FUSE_CFLAGS = $(shell pkg-config --cflags $(FUSE_PKGS) 2>/dev/null)
FUSE_LIBS   = $(shell pkg-config --libs $(FUSE_PKGS) 2>/dev/null)

# The library: util (bottom) -> transport -> store, origin -> fabric -> include/ucache.h
LIB_SRCS = util/status.c util/log.c util/config.c util/key.c util/latency.c util/opt.c util/mem.c \
           transport/transport.c transport/auth.c transport/blob.c transport/mapfd.c \
           transport/ucx.c transport/ucx_peer.c transport/ucx_req.c transport/ucx_am.c \
           transport/ucx_mem.c transport/ucx_listen.c transport/ucx_guard.c transport/devices.c \
           transport/ofi.c transport/ofi_peer.c transport/ofi_req.c transport/ofi_serve.c \
           transport/ofi_wait.c transport/ofi_mem.c transport/ofi_lib.c \
           store/layout.c store/alloc.c store/evict.c store/store.c store/tier.c store/check.c store/keymap.c store/nvme_rec.c store/nvme.c \
           origin/allow.c origin/cred.c origin/origin.c origin/origin_file.c origin/origin_http.c \
           origin/origin_azure.c origin/origin_s3.c origin/azure_identity.c \
           fabric/place.c fabric/member.c fabric/member_dir.c fabric/member_file.c fabric/member_etcd.c fabric/etcd.c fabric/view.c fabric/view_shm.c fabric/peer.c fabric/touch.c fabric/proto.c fabric/meta.c fabric/lookup.c fabric/manifest.c fabric/quota.c fabric/node.c fabric/client.c fabric/probe.c fabric/admin.c fabric/readq.c fabric/api.c fabric/stats_json.c \
           fabric/context.c
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)

PROGS    = $(BUILD)/bin/ucache $(BUILD)/bin/ucached $(BUILD)/bin/ucperf
PERF_SRCS = perf/options.c perf/latency.c perf/bench_raw.c perf/bench_store.c perf/bench_alloc.c perf/bench_place.c perf/bench_members.c perf/bench_fabric.c \
            perf/compare.c perf/plot.c \
            perf/exporter.c
PERF_OBJS = $(PERF_SRCS:%.c=$(BUILD)/obj/%.o)

# Test binaries: test_NAME is linked from TEST_OBJS_NAME and the library.
TEST_NAMES = util auth ucx ofi store ucperf fabric origin
TEST_OBJS_util   = tests/util/test_util.o
TEST_OBJS_auth   = tests/transport/test_auth.o
TEST_OBJS_ucx    = tests/transport/test_ucx.o tests/transport/test_ucx_mem.o \
                   tests/transport/test_ucx_am.o tests/transport/test_ucx_listen.o \
                   tests/transport/test_ucx_peer.o tests/transport/test_ucx_req.o \
                   tests/transport/ucx_util.o perf/exporter.o
TEST_OBJS_ofi    = tests/transport/test_ofi.o perf/exporter.o
# test_ucx injects a reset connection at the socket (tests/transport/ucx_util.c)
TEST_LD_ucx      = -Wl,--export-dynamic-symbol=ucs_socket_sendv_nb
TEST_OBJS_store  = tests/store/test_store.o tests/store/test_layout.o tests/store/test_alloc.o \
                   tests/store/test_evict.o tests/store/test_keymap.o tests/store/test_nvme.o tests/store/store_util.o
TEST_OBJS_ucperf = tests/perf/test_ucperf.o $(PERF_SRCS:.c=.o)
TEST_OBJS_fabric = tests/fabric/test_fabric.o tests/fabric/test_place.o tests/fabric/test_member.o \
                   tests/fabric/test_etcd.o \
                   tests/fabric/test_proto.o tests/fabric/test_manifest.o tests/fabric/test_view.o tests/fabric/test_view_shm.o \
                   tests/fabric/test_node.o tests/fabric/test_client.o tests/fabric/test_quota.o \
                   tests/fabric/test_probe.o tests/fabric/fabric_util.o
TEST_OBJS_origin = tests/origin/test_origin.o tests/origin/test_allow.o
TESTS    = $(TEST_NAMES:%=$(BUILD)/tests/test_%)
# Programs the multi-process suites (shell scripts) drive.
TEST_HELPERS = $(BUILD)/tests/fabric_client $(BUILD)/tests/fake_owner $(BUILD)/tests/replayer \
               $(BUILD)/tests/http_origin $(BUILD)/tests/token_endpoint \
               $(BUILD)/tests/az_put
TEST_SCRIPTS = tests/test_run.sh tests/test_library.sh tests/fabric/test_fabric.sh tests/fabric/test_ofi.sh tests/fabric/test_hosts.sh tests/fabric/test_hosts_ofi.sh tests/fabric/test_etcd.sh tests/fabric/test_compat.sh tests/fabric/test_meta.sh tests/fabric/test_start.sh tests/fabric/test_nvme.sh tests/fabric/test_scale.sh tests/fabric/test_wireup.sh tests/fabric/test_mpi.sh tests/fabric/test_admin.sh tests/fabric/test_hotset.sh tests/origin/test_http.sh tests/origin/test_s3.sh tests/origin/test_warmup.sh \
               tests/origin/test_h2.sh \
               tests/origin/test_azure.sh tests/origin/test_identity.sh tests/deploy/test_kubernetes.sh \
               tests/python/test_python.sh tests/tools/test_mount.sh tests/fabric/test_ofi_suites.sh
# The MPI job test is built with mpicc when Open MPI is installed (make deps).
MPICC ?= mpicc
ifneq ($(shell command -v $(MPICC) 2>/dev/null),)
TEST_HELPERS += $(BUILD)/tests/mpi_job
endif

LIB_SO   = $(BUILD)/lib/libucache-rdma.so
LIB_A    = $(BUILD)/lib/libucache-rdma.a

# Debian packages the project needs (make deps installs the missing ones).
DEB_PKGS = gcc clang libclang-rt-dev make pkg-config libucx-dev ucx-utils libxxhash-dev \
           libcunit1-dev mbw iproute2 procps strace openmpi-bin libopenmpi-dev \
           libcurl4-openssl-dev libssl-dev libxml2-dev libmicrohttpd-dev libibverbs-dev libjemalloc-dev curl openssl bsdutils time \
           libjson-c-dev etcd-server etcd-client yamllint python3-yaml systemd util-linux liburing-dev fio \
           python3-pip python3-setuptools python3-venv python3-wheel python3-cffi python3-fsspec \
           python3-pytest python3-numpy python3-torch fuse3 libfuse3-dev libfabric-dev libfabric-bin

.PHONY: npm-deps all tests test bench asan tsan demo install uninstall clean deps python
all: $(LIB_SO) $(LIB_A) $(PROGS) $(BUILD)/include/ucache.h

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	    echo "deps: missing packages:$$missing"; \
	    echo "deps: run as root, or: sudo apt-get install -y$$missing"; exit 1; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null \
	    || { echo "deps: apt-get install failed"; exit 1; }

# npm packages the tests use (the Azurite emulator; an S3 server that checks
# SigV4 signatures), under build/npm.  With no Node.js on the machine,
# Debian's nodejs and npm are installed first.
AZURITE = build/npm/node_modules/.bin/azurite-blob
S3RVER  = build/npm/node_modules/@20minutes/s3rver
NPM_PKGS = azurite@3 @20minutes/s3rver@5
npm-deps:
	@if [ -x $(AZURITE) ] && [ -d $(S3RVER) ]; then exit 0; fi; \
	if ! command -v npm >/dev/null; then \
	    if [ "$$(id -u)" = 0 ] && ! command -v node >/dev/null; then \
	        echo "deps: installing nodejs npm"; \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	            nodejs npm >/dev/null || true; \
	    fi; \
	fi; \
	if command -v npm >/dev/null; then \
	    echo "deps: npm install $(NPM_PKGS) (into build/npm)"; \
	    npm install --no-audit --no-fund --loglevel=error --prefix build/npm $(NPM_PKGS) \
	        >/dev/null || { echo "deps: npm install $(NPM_PKGS) failed"; exit 1; }; \
	elif [ "$${CI:-}" = true ]; then echo "deps: no npm (CI=true: the Azure and S3 suites must run)"; exit 1; \
	else echo "deps: no npm; the Azure and S3 tests will SKIP"; fi

# The flags above are asked of pkg-config when a rule needs them (after
# make deps); a library it cannot find stops the build here, with
# pkg-config's own message, instead of as a compiler error about a header.
.PHONY: pkg-check pkg-check-tests
pkg-check:
	@pkg-config --print-errors --exists $(PKGS) $(OFI_PKGS) $(HTTPD_PKGS) $(FUSE_PKGS) || \
	    { echo "make: a library is missing (above); make deps installs them (as root)" >&2; exit 1; }
pkg-check-tests: pkg-check
	@pkg-config --print-errors --exists $(TEST_PKGS) || \
	    { echo "make: a test library is missing (above); make deps installs them (as root)" >&2; exit 1; }

$(BUILD)/obj/%.o: %.c | pkg-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c | pkg-check-tests
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(TEST_CFLAGS) -c $< -o $@

$(LIB_SO): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libucache-rdma.so.0 -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BUILD)/bin/ucache: $(BUILD)/obj/tools/ucache.o $(BUILD)/obj/tools/stats.o \
                     $(BUILD)/obj/tools/dataset.o $(BUILD)/obj/tools/manifest.o $(BUILD)/obj/tools/warmup.o \
                     $(BUILD)/obj/tools/admin.o $(BUILD)/obj/tools/status.o \
                     $(BUILD)/obj/tools/health.o $(BUILD)/obj/tools/drain.o \
                     $(BUILD)/obj/tools/devices.o $(BUILD)/obj/tools/mount.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) $(FUSE_LIBS) -lm

$(BUILD)/obj/tools/mount.o: CFLAGS += $(FUSE_CFLAGS)

$(BUILD)/bin/ucached: $(BUILD)/obj/tools/ucached.o $(BUILD)/obj/tools/stats.o \
                      $(BUILD)/obj/tools/metrics.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) $(HTTPD_LIBS)

$(BUILD)/bin/ucperf: $(BUILD)/obj/perf/ucperf.o $(PERF_OBJS) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS) -lm

# keep the test objects (intermediates of the rule below) between builds
.SECONDARY:
.SECONDEXPANSION:
$(BUILD)/tests/test_%: $$(addprefix $(BUILD)/obj/,$$(TEST_OBJS_$$*)) $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(TEST_LD_$*) $(TEST_LIBS) $(LDLIBS) -lm

$(BUILD)/tests/fabric_client: $(BUILD)/obj/tests/fabric/fabric_client.o $(BUILD)/obj/tools/stats.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/fake_owner: $(BUILD)/obj/tests/fabric/fake_owner.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/replayer: $(BUILD)/obj/tests/fabric/replayer.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/mpi_job: tests/fabric/mpi_job.c include/ucache_mpi.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(MPICC) $(CSTD) $(WARN) $(OPT) -pthread -Iinclude $(LDFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

$(BUILD)/tests/http_origin: $(BUILD)/obj/tests/origin/http_origin.o $(BUILD)/obj/tests/origin/httpd.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(HTTPD_LIBS) -pthread

$(BUILD)/tests/token_endpoint: $(BUILD)/obj/tests/origin/token_endpoint.o $(BUILD)/obj/tests/origin/httpd.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(HTTPD_LIBS) -pthread

$(BUILD)/tests/az_put: $(BUILD)/obj/tests/origin/az_put.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

tests: $(TESTS) $(TEST_HELPERS)

# make python: the Python package (python/) in a venv of $(BUILD), over
# Debian's python3 and its torch, cffi, fsspec, numpy and pytest (these
# machines reach no Python index: PEP 668, --no-index), with the library
# built here next to the package.  Use it as $(BUILD)/venv/bin/python.
PYTHON ?= /usr/bin/python3
VENV    = $(BUILD)/venv
python: $(LIB_SO)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(VENV)
	@PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip install -q --no-build-isolation --force-reinstall --no-deps \
	    --no-index ./python
	@rm -rf python/build python/ucache.egg-info
	@cp $(LIB_SO) "$$($(VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ucache/libucache-rdma.so.0"
	@echo "python: $(VENV)/bin/python has ucache $$($(VENV)/bin/python -c 'import ucache; print(ucache.__version__)') over $(LIB_SO)"

# make test: install what is missing, build everything, run every suite.
test: deps npm-deps
	@$(MAKE) --no-print-directory all tests python
	@BUILD=$(BUILD) tests/run.sh $(TESTS) $(TEST_SCRIPTS)

# The sanitizer builds, each in its own tree (build/asan, build/tsan): the
# flags, and the environment their suites run in.  UCACHE_TEST_SLOW is how
# much slower than a plain build a sanitizer may make a test: the one
# allowance every bound a test puts on time is multiplied by (tests/lib.sh,
# tests/common.h).  UCX's malloc/mmap hooks fight TSan's interceptors, so
# they are off under TSan (UCX is not instrumented).  tests/run.sh sends
# every process's sanitizer report (daemons included) to a file and fails
# the suite that left one.
SAN_OPT_asan = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_LD_asan  = -fsanitize=address,undefined
SAN_ENV_asan = UCACHE_TEST_SLOW=3 UCACHE_TEST_SANITIZER=address ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
               LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_OPT_tsan = -O1 -g -fno-omit-frame-pointer -fsanitize=thread
SAN_LD_tsan  = -fsanitize=thread
SAN_ENV_tsan = UCACHE_TEST_SLOW=10 UCX_MEM_EVENTS=no UCX_MEM_MALLOC_HOOKS=no \
               UCX_MEM_MMAP_HOOK_MODE=none TSAN_OPTIONS=halt_on_error=1:exitcode=66 \
               UCACHE_TEST_SANITIZER=thread

.PHONY: build-asan build-tsan loop
build-asan build-tsan: build-%: deps npm-deps
	@$(MAKE) --no-print-directory BUILD=build/$* OPT="$(SAN_OPT_$*)" LDFLAGS="$(SAN_LD_$*)" \
	    all tests python

# make asan / make tsan: the whole suite under AddressSanitizer + UBSan, or
# under ThreadSanitizer - but for SAN_SKIP_asan / SAN_SKIP_tsan, which would
# take the CI run past its budget (docs/testing.md): test_hosts_ofi.sh (the
# multi-host faults once more, over libfabric), test_ofi_suites.sh (the
# fabric's suites once more, over libfabric: 6 minutes plain) and
# test_scale.sh (32 daemons) under both; under TSan also test_hosts.sh,
# test_etcd.sh, test_hotset.sh and test_ucperf (5, 2.5, 1 and 1 minutes
# there).  Their
# threads are the daemon's and the reader's that the other suites run under
# TSan; test_hosts.sh and test_etcd.sh run under ASan.
SAN_SKIP_asan = tests/fabric/test_hosts_ofi.sh tests/fabric/test_scale.sh \
                tests/fabric/test_ofi_suites.sh
SAN_SKIP_tsan = $(SAN_SKIP_asan) tests/fabric/test_hosts.sh tests/fabric/test_etcd.sh \
                tests/fabric/test_hotset.sh
SAN_SKIP_NAMES_tsan = ucperf
asan tsan: %: build-%
	@$(SAN_ENV_$*) BUILD=build/$* tests/run.sh \
	    $(addprefix build/$*/tests/test_,$(filter-out $(SAN_SKIP_NAMES_$*),$(TEST_NAMES))) \
	    $(filter-out $(SAN_SKIP_$*),$(TEST_SCRIPTS))

# make soak [SOAK_MINUTES=30]: the multi-host fault scenario of
# tests/fabric/test_hosts.sh for SOAK_MINUTES (rounds of kill -9 + restart,
# SIGSTOP, a cut link, SIGTERM + restart under one long-lived verifying
# reader); prints reads, bytes, wrong bytes, failed reads and the longest
# read.  Needs root.  Not part of make test or CI.
SOAK_MINUTES ?= 30
.PHONY: soak
soak: all tests
	@SOAK_MINUTES=$(SOAK_MINUTES) BUILD=$(BUILD) tests/run.sh tests/fabric/test_hosts.sh

# make loop [SAN=asan|tsan] [N=20] [SCRIPTS="..."]: the flake hunt - every
# multi-process suite N times in a row (plain build without SAN).
N ?= 20
SCRIPTS ?= $(TEST_SCRIPTS)
loop: $(if $(SAN),build-$(SAN),deps npm-deps)
	@$(if $(SAN),,$(MAKE) --no-print-directory all tests &&) \
	 $(SAN_ENV_$(SAN)) BUILD=$(if $(SAN),build/$(SAN),$(BUILD)) tests/loop.sh $(N) $(SCRIPTS)

# make fuzz [FUZZ_SECONDS=10] [FUZZ_TARGETS="..."]: libFuzzer harnesses
# (clang, -fsanitize=fuzzer,address,undefined; build/fuzz/) for every parser
# of bytes that cross a trust boundary, each run FUZZ_SECONDS from its seed
# corpus (tests/fuzz/corpus/NAME) plus what earlier runs found
# (build/fuzz/corpus/NAME); a crash saves its input under build/fuzz/crashes/
# and fails.  tests/fuzz/run.sh prints runs and coverage per target.
FUZZ_TARGETS ?= proto manifest azure_token nvme_rec member member_list etcd view_shm layout listing headers uri config cred blob auth keepalive ofi_blob
FUZZ_SECONDS ?= 10
FUZZ_CC      ?= clang
FUZZ_OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=undefined
.PHONY: fuzz build-fuzz
build-fuzz: deps
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=$(FUZZ_CC) OPT="$(FUZZ_OPT)" \
	    LDFLAGS="-fsanitize=address,undefined" $(FUZZ_TARGETS:%=build/fuzz/fuzz/fuzz_%)

$(BUILD)/fuzz/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDFLAGS) $(LDLIBS)

fuzz: build-fuzz
	@tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# make fuzz-seeds: rewrite the binary seeds (real messages, records, blobs,
# a store region) in tests/fuzz/corpus/ from this build
.PHONY: fuzz-seeds
fuzz-seeds: $(BUILD)/tests/fuzz_seeds
	@$(BUILD)/tests/fuzz_seeds

$(BUILD)/tests/fuzz_seeds: $(BUILD)/obj/tests/fuzz/seeds.o $(LIB_A)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# The main job: a local fabric of three daemons reading a sample dataset.
demo: deps
	@$(MAKE) --no-print-directory all $(BUILD)/tests/http_origin
	@tools/demo.sh $(BUILD)/bin

# the baseline of `ucperf raw --transport ofi`: a bare fi_read loop (not in
# the library, which loads libfabric only when asked: this links it)
$(BUILD)/bin/fi_read_loop: perf/fi_read_loop.c transport/fi_read_loop.c transport/fi_read_loop.h
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) -pthread -I. -o $@ perf/fi_read_loop.c transport/fi_read_loop.c \
	    $(shell pkg-config --libs libfabric)

bench: deps npm-deps
	@$(MAKE) --no-print-directory all python $(BUILD)/tests/http_origin $(BUILD)/tests/az_put \
	    $(BUILD)/bin/fi_read_loop
	@perf/run-bench.sh $(BUILD)/bin/ucperf

# The installed ucache.h is one file: each lower-layer header of the types
# it shares (util/status.h, util/log_level.h, transport/devices.h,
# origin/token.h; included as "../DIR/FILE.h") written in where it is
# included, recursively.
UCACHE_H_PARTS = util/status.h util/log_level.h transport/devices.h origin/token.h
$(BUILD)/include/ucache.h: include/ucache.h $(UCACHE_H_PARTS)
	@mkdir -p $(dir $@)
	awk 'function inl(f,   l, a) { while ((getline l < f) > 0) { \
	         if (l ~ /^#include "\.\.\//) { split(l, a, "\""); inl(substr(a[2], 4)) } \
	         else print l } close(f) } \
	     BEGIN { inl("include/ucache.h") }' > $@

$(BUILD)/ucache.pc: Makefile
	@mkdir -p $(dir $@)
	@printf 'prefix=%s\nlibdir=$${prefix}/lib\nincludedir=$${prefix}/include\n\nName: ucache\nDescription: ucache cache fabric client library (libucache-rdma)\nVersion: 0.1.0\nRequires.private: %s\nLibs: -L$${libdir} -lucache-rdma\nCflags: -I$${includedir}\n' \
	    '$(prefix)' '$(PKGS)' > $@

install: all $(BUILD)/ucache.pc
	install -d $(DESTDIR)$(prefix)/lib $(DESTDIR)$(prefix)/include \
	    $(DESTDIR)$(prefix)/bin $(DESTDIR)$(prefix)/lib/pkgconfig
	install -m 0755 $(LIB_SO) $(DESTDIR)$(prefix)/lib/libucache-rdma.so.0
	ln -sf libucache-rdma.so.0 $(DESTDIR)$(prefix)/lib/libucache-rdma.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(prefix)/lib/
	install -m 0644 $(BUILD)/include/ucache.h include/ucache_mpi.h $(DESTDIR)$(prefix)/include/
	install -m 0644 $(BUILD)/ucache.pc $(DESTDIR)$(prefix)/lib/pkgconfig/
	install -m 0755 $(PROGS) $(DESTDIR)$(prefix)/bin/
	install -d $(DESTDIR)$(unitdir) $(DESTDIR)$(docdir) $(DESTDIR)$(sysconfdir)/ucache
	sed -e 's#@bindir@#$(prefix)/bin#g' -e 's#@sysconfdir@#$(sysconfdir)#g' \
	    -e 's#@docdir@#$(docdir)#g' -e 's#@unitdir@#$(unitdir)#g' \
	    deploy/systemd/ucached.service.in > $(DESTDIR)$(unitdir)/ucached.service
	chmod 0644 $(DESTDIR)$(unitdir)/ucached.service
	install -m 0644 docs/*.md $(DESTDIR)$(docdir)/
	[ -e $(DESTDIR)$(sysconfdir)/ucache/ucached.env ] || \
	    install -m 0644 deploy/systemd/ucached.env $(DESTDIR)$(sysconfdir)/ucache/ucached.env

uninstall:
	rm -f $(DESTDIR)$(prefix)/lib/libucache-rdma.so* $(DESTDIR)$(prefix)/lib/libucache-rdma.a \
	    $(DESTDIR)$(prefix)/include/ucache.h $(DESTDIR)$(prefix)/include/ucache_mpi.h \
	    $(DESTDIR)$(prefix)/lib/pkgconfig/ucache.pc \
	    $(DESTDIR)$(prefix)/bin/ucache $(DESTDIR)$(prefix)/bin/ucached \
	    $(DESTDIR)$(prefix)/bin/ucperf $(DESTDIR)$(unitdir)/ucached.service
	rm -rf $(DESTDIR)$(docdir)

# make clean [BUILD=...]: removes that build's outputs (build/ by default,
# with the sanitizer, fuzz and npm trees under it)
clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
