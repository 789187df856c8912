# headroom — one Makefile for newcomers, developers and CI.
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
# A Python 3.12 that really runs (a pyenv shim named python3.12 may exist and refuse to run).
PY312 ?= $(shell for p in $$(command -v python3.12) $$HOME/.pyenv/versions/3.12.*/bin/python3.12 /usr/bin/python3.12; do [ -x "$$p" ] && "$$p" -c 'import sys' >/dev/null 2>&1 && echo "$$p" && break; done)
VENV312 ?= .venv312
STAMP := $(VENV)/.installed

.PHONY: install install312 proxy test test311 test312 bench bench-compression bench-loop bench-billing demo web clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -c constraints.txt -e '.[all]'
	$(VPY) -m pip check
	$(VPY) scripts/seed_tiktoken.py
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install headroom with every extra

STAMP312 := $(VENV312)/.installed
$(STAMP312): pyproject.toml constraints-py312.txt
	@test -n "$(PY312)" || { echo "python3.12 not found (set PY312=/path/to/python3.12)"; exit 1; }
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q -c constraints-py312.txt -e '.[redis,dev]'
	$(VENV312)/bin/python -m pip check
	$(VENV312)/bin/python scripts/seed_tiktoken.py
	touch $(STAMP312)

install312: $(STAMP312)  ## a Python 3.12 venv with mitmproxy 12 for the proxy suite

proxy: install  ## install if needed, then start the proxy on its defaults (127.0.0.1:8787)
	$(VENV)/bin/headroom proxy

test: test311 test312  ## everything CI runs: full suite on 3.11/mitmproxy 11, proxy suite on 3.12/mitmproxy 12

test311: install  ## the whole suite on Python 3.11 + mitmproxy 11
	$(VPY) -m pytest -q

test312: install312  ## the proxy end-to-end suite again on Python 3.12 + mitmproxy 12
	$(VENV312)/bin/python -m pytest -q -m e2e

bench: install
	$(VPY) scripts/bench_proxy.py

bench-compression: install  ## engine savings and speed, then the proxy-level figures below
	$(VPY) scripts/bench_compression.py
	$(VPY) scripts/bench_loop.py
	$(VPY) scripts/bench_billing.py

bench-loop: install  ## delay of small requests while a 10 MB output is compressed (bench-results/loop.md)
	$(VPY) scripts/bench_loop.py

bench-billing: install  ## billed cost of a replayed agent session, direct vs through headroom (bench-results/billing.md)
	$(VPY) scripts/bench_billing.py

demo: install
	$(VENV)/bin/headroom demo

web: install
	$(VENV)/bin/headroom web

clean:
	rm -rf $(VENV) $(VENV312) build dist *.egg-info
