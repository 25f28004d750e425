# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# jlpm and jupyter-builder (the JupyterLab extension build) live in the venv.
export PATH := $(abspath $(BIN)):$(PATH)
# The JupyterLab extension's sources: `pip install -e` rebuilds it (hatch-jupyter-builder) when they change.
LABEXT_SOURCES := package.json yarn.lock tsconfig.json .yarnrc.yml $(wildcard labextension/*.json labextension/src/*.ts labextension/style/* labextension/schema/*.json jupyter-config/*/* jupyter-config/*/*/*)
LAB_PORT ?= 8888
DAGSTER_STAMP := $(VENV)/.installed-dagster

.PHONY: demo test install bench clean lab lint test-python test-server test-browser screenshots compose-check

$(STAMP): pyproject.toml $(LABEXT_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# The optional [dagster] extra, for the tests only (`make demo` doesn't need it).
$(DAGSTER_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dagster]'
	touch $(DAGSTER_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rat demo

# Three pytest processes: pytest-jupyter's event loops (REST tests) and Playwright's sync API
# (browser tests) must not share one.
test: lint test-python test-server test-browser

test-python: $(STAMP) $(DAGSTER_STAMP)
	$(BIN)/python -m pytest tests --ignore=tests/browser --ignore=tests/test_server.py --ignore=tests/test_server_faults.py

test-server: $(STAMP)
	$(BIN)/python -m pytest tests/test_server.py tests/test_server_faults.py

# JupyterLab in Debian's chromium (`apt-get install chromium`; .ci/run does it).
test-browser: $(STAMP)
	$(BIN)/python -m pytest tests/browser

# Python: ruff (rules explained in pyproject.toml), mypy with the pydantic plugin, import-linter
# (dependencies point down); then the TypeScript type-check and ESLint of the JupyterLab extension.
lint: $(STAMP) $(DAGSTER_STAMP)
	$(BIN)/ruff check ratatouille_nb ratatouille tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/jlpm install
	$(BIN)/jlpm lint:check

# Re-take the screenshots under docs/screenshots (light theme, and the sidebar in dark).
screenshots: $(STAMP)
	RAT_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/browser

workspaces/demo/workspace.yaml:
	$(MAKE) demo

# JupyterLab on the demo workspace, everything enabled; the repo root is the server root, so
# notebooks/ (getting-started.ipynb) and workspaces/ are reachable.
lab: $(STAMP) workspaces/demo/workspace.yaml
	RAT_WORKSPACE=$(CURDIR)/workspaces/demo $(BIN)/jupyter lab --ServerApp.root_dir=$(CURDIR) \
		--port=$(LAB_PORT) --LabApp.default_url=/lab/tree/notebooks/getting-started.ipynb \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Parse and check both compose files without a Docker engine (Debian's docker-compose package).
compose-check:
	docker-compose -f docker-compose.yml config -q
	docker-compose -f docker-compose.minimal.yml config -q

bench: $(STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/notebook_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
