VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 7860
export HF_HUB_OFFLINE := 1

.PHONY: install run index test lint eval bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: the CPU build lies on this disk; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0 || $(PIP) install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(VENV)/bin/rag index

run: install
	$(VENV)/bin/rag -v index
	$(VENV)/bin/rag serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .

test: install lint
	$(PY) -m pytest -q

eval: install
	$(VENV)/bin/rag eval --split test --json artifacts/eval-test.json

bench: install
	$(PY) eval/bench.py

clean:
	rm -rf $(VENV) index/CURRENT index/build-* .cache artifacts
