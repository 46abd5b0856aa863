# inkgraph — every target does its own set-up; a fresh clone needs only Python 3.11+ and npm.
#   make run    migrate, seed demo data (once) and serve on http://127.0.0.1:8000/graphql
#   make test   lint, type-check and the whole test suite (SQLite + reachable PostgreSQL/MariaDB)
#   make reset  wipe ./inkgraph.db and seed the demo data again

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
BIN := .venv/bin
GRAPHIQL := server/graphiql
# The client proofs (tests/clients): npm packages for the browser and TypeScript proofs.
CLIENTS_JS := tests/clients/js
# ariadne-codegen in its own locked env: it needs graphql-core < 3.3, strawberry >= 3.3.
CLIENTS_PY := tests/clients/python
# uv must use this machine's Python, never download one.
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run reset test pytest lint fmt typecheck schema bench docker-config clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The lock is the source of truth: --frozen installs exactly uv.lock and fails if it is stale.
.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

$(GRAPHIQL)/node_modules/.synced: $(GRAPHIQL)/package.json $(GRAPHIQL)/package-lock.json
	npm ci --prefix $(GRAPHIQL) --ignore-scripts --no-audit --no-fund
	@touch $@

$(CLIENTS_JS)/node_modules/.synced: $(CLIENTS_JS)/package.json $(CLIENTS_JS)/package-lock.json
	npm ci --prefix $(CLIENTS_JS) --ignore-scripts --no-audit --no-fund
	@touch $@

$(CLIENTS_PY)/.venv/.synced: $(CLIENTS_PY)/pyproject.toml $(CLIENTS_PY)/uv.lock | $(UV)
	$(UV) sync --frozen --project $(CLIENTS_PY) --python $(PYTHON)
	@touch $@

install: .venv/.synced $(GRAPHIQL)/node_modules/.synced
install: $(CLIENTS_JS)/node_modules/.synced $(CLIENTS_PY)/.venv/.synced

run: install
	$(BIN)/inkgraph migrate
	$(BIN)/inkgraph seed
	$(BIN)/inkgraph serve

# Only the default SQLite file: a DATABASE_URL elsewhere is never wiped by a make target.
reset: install
	@if [ -n "$$DATABASE_URL" ]; then \
		echo "make reset wipes only ./inkgraph.db; DATABASE_URL is set, so nothing was done." >&2; \
		exit 1; \
	fi
	rm -f inkgraph.db inkgraph.db-wal inkgraph.db-shm
	$(BIN)/inkgraph migrate
	$(BIN)/inkgraph seed

test: lint typecheck pytest

# Coverage of server/ and loaders/ is measured on every run; [tool.coverage.report] fail_under
# is the floor (ratchet it up, never down).
pytest: install
	$(BIN)/python -m pytest --cov --cov-report=term

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

schema: install
	$(BIN)/inkgraph export-schema -o schema.graphql

bench: install
	$(BIN)/python -m bench.run

docker-config:
	@if ! docker compose version >/dev/null 2>&1; then \
		echo "make docker-config needs Docker with the compose plugin;" \
			"\`docker compose version\` fails on this machine." >&2; \
		echo "(make test still checks docker/compose.yaml against the compose-spec schema.)" >&2; \
		exit 1; \
	fi
	docker compose -f docker/compose.yaml config

clean:
	rm -rf .venv $(TOOLS) $(GRAPHIQL)/node_modules .pytest_cache .mypy_cache .ruff_cache
	rm -f inkgraph.db inkgraph.db-wal inkgraph.db-shm
	rm -rf $(CLIENTS_JS)/node_modules $(CLIENTS_JS)/src/gql $(CLIENTS_JS)/dist $(CLIENTS_PY)/.venv
