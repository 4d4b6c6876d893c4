# The commands a person types.  Every target builds what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ndisemu-installed
NATIVE := $(wildcard cdefs/*.h ndisemu/native/*.c ndisemu/native/*.h) \
          ndisemu/_build.py pyproject.toml setup.py

.PHONY: install test bench layout lint fuzz clean

install: $(STAMP)

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

test: install
	$(PY) -m pytest

# The property tests with fresh random examples instead of the fixed CI set.
fuzz: install
	NDISEMU_FUZZ=1 $(PY) -m pytest -q tests/test_clone.py tests/test_dataspace.py tests/test_kernel.py

lint: install
	$(PY) -m ruff check ndisemu tests benchmarks

bench: install
	$(PY) -m ndisemu layout --json > /dev/null
	$(PY) -m ndisemu layout NET_BUFFER_LIST NET_BUFFER MDL

layout: install
	$(PY) -m ndisemu layout

clean:
	rm -rf $(VENV) build *.egg-info ndisemu/_native*.so ndisemu/_native.c
