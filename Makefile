# Two commands a newcomer needs:  `make run` (tiny preset, offline) and `make test`.
# Every install step uses constraints.txt, which pins torch (CPU wheel here, CUDA on a cluster).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 1

.PHONY: setup run test test-slow test-slurm lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/pip check
	touch $@

# The whole DAG on the embedded default: tiny model, local executor, sqlite MLflow under results/.
run: setup
	$(BIN)/snakemake all --profile profiles/laptop --configfile config/tiny.yaml

# Fast unit tests plus the workflow integration tests on the tiny preset (CPU).
test: setup
	$(BIN)/pytest

# Everything but SLURM: adds the slow tests (learning curve, whole paper target).
test-slow: setup
	$(BIN)/pytest -m "not slurm and not gpu"

# The SLURM profile against a real one-node scheduler started here (needs root or sudo).
test-slurm: setup
	.ci/slurm.sh

lint: setup
	$(BIN)/ruff check src tests workflow benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint -n

clean:
	rm -rf results/* logs .snakemake
