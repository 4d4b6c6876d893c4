# The commands a person types.  Every target builds what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ndisemu-installed
NATIVE := $(wildcard ndisemu/include/*.h ndisemu/include/cdefs/*.h ndisemu/native/*.c ndisemu/native/*.h) \
          ndisemu/_build.py pyproject.toml setup.py

.PHONY: install test test-sanitize bench bench-reference layout lint fuzz clean windows-cc

install: $(STAMP)

# Build and test tools; Hypothesis at the pin of the package's `fuzz` extra
# (the strategies' one dependency; a test keeps the two the same).
$(VENV)/.tools:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check \
	    "setuptools>=68" wheel "cffi>=1.16" "pycparser>=2.21" "numpy>=1.24" \
	    "pytest>=7.4" "hypothesis>=6.90" "ruff>=0.4"
	touch $@

# Editable install without build isolation: the native module is rebuilt in
# place from the venv's own setuptools/cffi whenever a C source changes.
$(STAMP): $(VENV)/.tools $(NATIVE)
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $@

# The tests include the benchmark's plot, so they need the bench extra too,
# and `layout check` on C files, so the Windows-targeting compiler.
test: install $(VENV)/.bench-tools windows-cc
	$(PY) -m pytest

# The whole suite and a chaos run against the native core built with
# AddressSanitizer and UndefinedBehaviorSanitizer (in build/sanitize, never
# replacing the module `make test` uses).  Any report fails the run.
SANITIZE_DIR   := $(CURDIR)/build/sanitize
SANITIZE_SEEDS ?= 40
SANITIZED      := $(PY) -m ndisemu sanitized -- env PYTHONSAFEPATH=1 \
                  PYTHONPATH=$(SANITIZE_DIR) NDISEMU_EXPECT_SANITIZED=$(SANITIZE_DIR)

test-sanitize: install $(VENV)/.bench-tools
	$(PY) -m ndisemu._build --sanitize $(SANITIZE_DIR) >/dev/null
	$(SANITIZED) $(PY) -m pytest -q -p no:cacheprovider --capture=sys
	$(SANITIZED) $(PY) tests/scripts/chaos.py --seeds $(SANITIZE_SEEDS)

# `ndisemu layout check` on C needs clang (its MSVC targets lay structs out
# as the Windows compiler does) and mingw-w64's Windows headers, both from
# the distribution.  Checked every time (ndisemu.wincc finds them the way
# the check does); installed only when missing, quietly, as root.
WINCC_PACKAGES := clang mingw-w64-x86-64-dev
WINCC_MISSING  := $(PY) -c "import sys; from ndisemu import wincc; \
                  why = wincc.available(); why and print(why, file=sys.stderr); sys.exit(bool(why))"

windows-cc: install
	@$(WINCC_MISSING) 2>/dev/null || { \
	    if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	        echo "make: layout check needs $(WINCC_PACKAGES) (Debian packages); install them as root" >&2; \
	        exit 1; fi; \
	    echo "installing $(WINCC_PACKAGES) for layout check on C files"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	        --no-install-recommends $(WINCC_PACKAGES); } >$(VENV)/apt.log 2>&1 || \
	        { cat $(VENV)/apt.log >&2; exit 1; }; \
	    $(WINCC_MISSING); }

# The property and state-machine tests with fresh random examples, 20 times
# make test's budget per test, in rounds with new seeds until
# NDISEMU_FUZZ_SECONDS (default 180) have passed (tests/scripts/fuzz.py).
fuzz: install
	$(PY) tests/scripts/fuzz.py

lint: install
	$(PY) -m ruff check ndisemu tests benchmarks examples

# The clone vs deep-clone suite in full: what the run says and every row on
# stdout, the JSON and the plot under build/bench/ (ignored by git: each run
# is a new one).  `make bench-reference` copies the latest run over the
# committed reference run in benchmarks/reference/, the one the README
# quotes.  matplotlib (the `bench` extra) is installed into the venv the
# first time.  One BLAS thread: numpy's idle OpenBLAS threads would
# otherwise compete for this machine's cores.
BENCH_OUT := build/bench
BENCH_REFERENCE := benchmarks/reference

$(VENV)/.bench-tools: $(VENV)/.tools
	$(PY) -c "import matplotlib" 2>/dev/null || \
	    $(PY) -m pip install -q --disable-pip-version-check "matplotlib>=3.7"
	touch $@

bench: install $(VENV)/.bench-tools
	OPENBLAS_NUM_THREADS=1 $(PY) -m ndisemu bench \
	    --json-out $(BENCH_OUT)/latest.json --plot $(BENCH_OUT)/clone_vs_deepclone.png

bench-reference:
	@test -f $(BENCH_OUT)/latest.json || { echo "make bench-reference: run make bench first" >&2; exit 1; }
	mkdir -p $(BENCH_REFERENCE)
	cp $(BENCH_OUT)/latest.json $(BENCH_REFERENCE)/results.json
	cp $(BENCH_OUT)/clone_vs_deepclone.png $(BENCH_REFERENCE)/clone_vs_deepclone.png

layout: install
	$(PY) -m ndisemu layout

clean:
	rm -rf $(VENV) build *.egg-info ndisemu/_native*.so ndisemu/_native.c
