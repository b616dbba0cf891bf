# Everything goes through the virtualenv in .venv and the pinned constraints.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install peer test demo lint docs format bench bench-all clean

install: $(STAMP)

# Re-installs only when the packaging inputs change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# setuptools explains editable installs in a UserWarning on every install; not ours to act on
	PYTHONWARNINGS=ignore::UserWarning $(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

# hftbacktest, the peer the tick replay is checked against (scripts/validate_fills.py), in its
# own virtualenv: it pins numpy below the version this project uses
PEER := .venv-peer
PEER_STAMP := $(PEER)/.installed
peer: $(PEER_STAMP)

$(PEER_STAMP): constraints-peer.txt
	test -x $(PEER)/bin/python || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet -c constraints-peer.txt hftbacktest
	touch $(PEER_STAMP)

# the whole check: import contracts, the strict docs build, then every test but the online ones
test: install peer
	$(VENV)/bin/lint-imports
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir .venv/site
	$(PY) -m pytest -m "not online" tests

demo: install
	$(VENV)/bin/swarm-ray demo --out runs/demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

# the documentation site (MkDocs, Material theme) into site/; `mkdocs serve` to browse it
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) scripts/bench_env.py

# every benchmark script (each also takes --json); about 50 minutes on 2 cores, 40 of them the
# training race against Stable-Baselines3 (scripts/bench_train.py --skip-race leaves it out)
bench-all: install
	$(PY) scripts/bench_env.py
	$(PY) scripts/bench_train.py
	$(PY) scripts/bench_serve.py
	$(PY) scripts/bench_swarm.py
	$(PY) scripts/bench_backtest.py

clean:
	rm -rf $(VENV) $(PEER) runs site .pytest_cache
