# Two commands do all the set-up: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.bench-installed
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test install browser clean oc-venv vllm-venv lmdeploy-venv

install: $(STAMP)

# torch first, pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

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

$(OC_STAMP): requirements-opencompass.txt constraints.txt
	@start=$$(date +%s); set -e; \
	$(PYTHON) -m venv $(BENCH_OC_VENV); \
	$(BENCH_OC_VENV)/bin/pip install -q --upgrade pip; \
	$(BENCH_OC_VENV)/bin/pip install -q -c constraints.txt torch==2.13.0; \
	$(BENCH_OC_VENV)/bin/pip install -q -c constraints.txt -r requirements-opencompass.txt; \
	touch $@; \
	echo "oc-venv: $(BENCH_OC_VENV) ready in $$(( $$(date +%s) - start ))s"

# Serving engines for `bench serve --engine vllm|lmdeploy`, each in its own venv (they pin their own
# torch; lmdeploy needs torch<=2.12.1) and each needing a CUDA GPU. bench finds them here, or via
# BENCH_VLLM_VENV / BENCH_LMDEPLOY_VENV, or on PATH.
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
	rm -rf $(VENV) .cache .pytest_cache
