# Two commands a newcomer needs:  `make run` (tiny preset, offline) and `make test`.
# Every install comes from uv.lock (exact versions of every distribution); `make lock` refreshes it.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# uv itself lives in a small tools venv, at the version pyproject.toml requires.
TOOLS := .tools
UV := $(TOOLS)/bin/uv
UV_VERSION := $(shell sed -n 's/^required-version = "==\(.*\)"/\1/p' pyproject.toml)
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export OMP_NUM_THREADS ?= 1

# torch: the lock pins one version; the machine picks its build. With a GPU (nvidia-smi found),
# PyPI's CUDA build and its CUDA runtime packages, exactly as locked; without one, the CPU build of
# the same version, and the CUDA runtime packages are left out. The CPU build comes from pip's
# find-links where the machine sets them, else from PyTorch's CPU index.
ACCELERATOR ?= $(if $(shell command -v nvidia-smi),cuda,cpu)
EXTRAS ?= test
TORCH_VERSION = $(shell $(PYTHON) scripts/lock_info.py version torch)
CUDA_ONLY = $(shell $(PYTHON) scripts/lock_info.py cuda-runtime)
TORCH_CPU_FROM ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--index https://download.pytorch.org/whl/cpu)

.PHONY: setup lock envs run test test-slow test-slurm test-tracking-server test-transcriptformer lint clean

setup: $(VENV)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
ifeq ($(ACCELERATOR),cuda)
	$(UV) sync --frozen $(addprefix --extra ,$(EXTRAS) gpu)
	$(BIN)/python scripts/lock_info.py check-installed $(EXTRAS) gpu
else
	$(UV) sync --frozen $(addprefix --extra ,$(EXTRAS)) --no-install-package torch $(addprefix --no-install-package ,$(CUDA_ONLY))
	$(UV) pip install --python $(BIN)/python --no-deps $(TORCH_CPU_FROM) torch==$(TORCH_VERSION)
	$(BIN)/python scripts/lock_info.py check-installed $(EXTRAS)
endif
	touch $@

# Re-resolve every dependency to today's newest allowed versions (the pipeline's lock and
# TranscriptFormer's), then regenerate envs/*.yaml from them.
lock: | $(UV)
	$(UV) lock --upgrade
	$(UV) lock --upgrade --project envs/transcriptformer
	$(MAKE) envs

# The conda environment files are generated from the lock, never edited by hand.
envs: setup
	$(BIN)/python scripts/lock_info.py write-envs

# The whole DAG on the embedded default: tiny model, local executor, sqlite MLflow under results/.
run: setup
	$(BIN)/snakemake all --profile profiles/laptop --configfile config/tiny.yaml

# Fast unit tests plus the workflow integration tests on the tiny preset (CPU).
test: setup
	$(BIN)/pytest

# The TranscriptFormer PMI backend against the real package, in its own environment (.venv-tf,
# from envs/transcriptformer/uv.lock: torch 2.5.1 and the package's other exact pins; pytest is in
# that lock). rbio comes from src/ on PYTHONPATH: installing it would pull the pipeline's own
# dependencies, which conflict with those pins. CPU only: a tiny random model, eager attention.
TF_VENV ?= .venv-tf

$(TF_VENV)/.installed: envs/transcriptformer/pyproject.toml envs/transcriptformer/uv.lock | $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(TF_VENV) $(UV) sync --frozen --project envs/transcriptformer
	touch $@

test-transcriptformer: $(TF_VENV)/.installed
	PYTHONPATH=$(CURDIR)/src $(TF_VENV)/bin/python -m pytest -m transcriptformer \
		tests/verifiers/test_pmi_transcriptformer.py

# Everything but SLURM: adds the slow tests (learning curve, whole paper target, rerun semantics).
test-slow: setup
	$(BIN)/pytest -m "not slurm and not gpu"

# The cluster tracking setup for real: a throwaway PostgreSQL cluster (the installed initdb, as
# the `postgres` user when run as root), moto's S3 server and `mlflow server` started as
# `rbio tracking-server` starts it; 16 concurrent writers through the project's logging code.
test-tracking-server: setup
	$(BIN)/pytest -m tracking_server

# The SLURM profile against a real one-node scheduler started here (needs root or sudo).
test-slurm: setup
	.ci/slurm.sh

lint: setup
	$(BIN)/ruff check src tests workflow bench scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint -n

clean:
	rm -rf results/* logs .snakemake
