# `make demo` and `make test` each set themselves up on a fresh machine.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint notebooks test-all test-fp32 test-bf16 gpu-check docs install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1 || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/cnnzoo train lenet5

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

# ruff, configured in pyproject.toml; .ci/run runs it before the tests
lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks

# Every lecture notebook (notebooks/), run top to bottom in a fresh kernel; fails on any error.
notebooks: $(STAMP)
	$(BIN)/python scripts/gen_notebooks.py --run

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "slow or not slow"

# The default suite with bf16 autocast forced off (a CPU without AMX or avx512_bf16) or on:
# results asserted by the learning tests must hold under both.
test-fp32: $(STAMP)
	CNNZOO_BF16=off $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

test-bf16: $(STAMP)
	CNNZOO_BF16=on $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

# On a machine with a CUDA GPU: the cuda tests, ResNet-50 speed, time to 99% on MNIST, in one
# go (benchmarks/gpu_check.sh; CNNZOO_PYTHON picks the Python, default python3).
gpu-check:
	bash benchmarks/gpu_check.sh

docs: $(STAMP)
	$(BIN)/python scripts/gen_param_counts.py
	$(BIN)/python scripts/gen_model_docs.py
	$(BIN)/python scripts/gen_zoo_table.py

clean:
	rm -rf $(VENV) .pytest_cache
