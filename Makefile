# Two commands do all the set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bench-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test install browser clean oc-venv vllm-venv lmdeploy-venv lock check-python

# Every environment bench installs comes from a lock with the exact version and sha256 of every
# package (requirements/*.lock, made by `make lock`): the registry moves under us, and every cache
# key and figure depends on the versions. pyproject.toml keeps ranges for `pip install bench`.
LOCK    := requirements/bench.lock
OC_LOCK := requirements/opencompass.lock
# torch==2.13.0+cpu (locked with its hash) is on PyTorch's CPU index, which pip is pointed at when
# that host resolves; elsewhere it must come from pip's own configuration (find-links, a mirror).
TORCH_INDEX ?= $(shell $(PYTHON) -c "import socket; socket.getaddrinfo('download.pytorch.org', 443); print('https://download.pytorch.org/whl/cpu')" 2>/dev/null)
PIP_LOCKED  = pip install -q --require-hashes --no-deps $(if $(strip $(TORCH_INDEX)),--extra-index-url $(TORCH_INDEX))

install: $(STAMP)

check-python:
	@$(PYTHON) -c "import sys, platform; sys.exit(None if sys.version_info[:2] == (3, 11) and platform.machine() == 'x86_64' and sys.platform == 'linux' else 'the locks in requirements/ are for CPython 3.11 on x86_64 Linux; run make with PYTHON=python3.11, or pip install -e .[dev] into an environment of your own (unpinned: pyproject ranges)')"

# A new lock makes a new venv: what the lock says, nothing more, nothing left over.
$(STAMP): $(LOCK) pyproject.toml | check-python
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_LOCKED) -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/python -m bench.lockfile $(LOCK)
	touch $@

# Regenerate the locks on purpose: every package as the registry had it at LOCK_DATE (default: now).
# uv's resolver: seconds instead of pip-compile's minutes, hashes for every wheel of each pinned
# version, and --exclude-newer to re-create a lock as of a date. Installs stay plain pip.
UV_VERSION  := 0.13.10
LOCK_DATE   ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
TORCH_WHEELS ?= $(or $(PIP_FIND_LINKS),https://download.pytorch.org/whl/cpu/torch/)
UV_COMPILE   = .venv-lock/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28 --exclude-newer $(LOCK_DATE) \
	--find-links $(TORCH_WHEELS) -c requirements/torch.txt

lock:
	test -x .venv-lock/bin/uv || { $(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==$(UV_VERSION); }
	$(UV_COMPILE) pyproject.toml requirements/bench.in --extra dev -o $(LOCK)
	$(UV_COMPILE) requirements/opencompass.in -o $(OC_LOCK)
	@echo "locks written as of $(LOCK_DATE); make install and make oc-venv rebuild the venvs from them"

demo: $(STAMP)
	$(BIN)/bench demo

# The browser tests need Debian's chromium and a Chinese font (the CJK test checks that Chinese is
# drawn with a real CJK face); install what is missing when we can (root + apt), else they skip
# locally (and fail under CI=true).
browser:
	@missing=""; test -x /usr/bin/chromium || missing=" chromium"; \
	fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" || missing="$$missing fonts-wqy-microhei"; \
	test -z "$$missing" || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && apt-get install -y -qq $$missing >/dev/null) || \
	  echo "warning: could not install$$missing (needs root and apt-get); browser tests will skip"; }

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# OpenCompass in its own venv (it cannot share one with trl); bench drives it as a subprocess.
BENCH_OC_VENV ?= .venv-oc
OC_STAMP      := $(BENCH_OC_VENV)/.oc-installed

oc-venv: $(OC_STAMP)

$(OC_STAMP): $(OC_LOCK) | check-python
	@start=$$(date +%s); set -e; \
	rm -rf $(BENCH_OC_VENV); \
	$(PYTHON) -m venv $(BENCH_OC_VENV); \
	$(BENCH_OC_VENV)/bin/$(PIP_LOCKED) -r $(OC_LOCK); \
	$(BENCH_OC_VENV)/bin/python bench/lockfile.py $(OC_LOCK); \
	touch $@; \
	echo "oc-venv: $(BENCH_OC_VENV) ready in $$(( $$(date +%s) - start ))s"

# Serving engines for `bench serve --engine vllm|lmdeploy`, each in its own venv (they pin their own
# torch; lmdeploy needs torch<=2.12.1) and each needing a CUDA GPU. bench finds them here, or via
# BENCH_VLLM_VENV / BENCH_LMDEPLOY_VENV, or on PATH. These two are NOT locked: they install the newest
# release (there is no GPU here to test a lock on); a run through them records their server's version.
BENCH_VLLM_VENV     ?= .venv-vllm
BENCH_LMDEPLOY_VENV ?= .venv-lmdeploy

vllm-venv:
	$(PYTHON) -m venv $(BENCH_VLLM_VENV)
	$(BENCH_VLLM_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VLLM_VENV)/bin/pip install -q vllm
	@echo "vllm-venv: $(BENCH_VLLM_VENV) ready; bench serve MODEL --engine vllm"

lmdeploy-venv:
	$(PYTHON) -m venv $(BENCH_LMDEPLOY_VENV)
	$(BENCH_LMDEPLOY_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_LMDEPLOY_VENV)/bin/pip install -q lmdeploy
	@echo "lmdeploy-venv: $(BENCH_LMDEPLOY_VENV) ready; bench serve MODEL --engine lmdeploy"

clean:
	rm -rf $(VENV) .venv-lock .cache .pytest_cache
