# entra-rbac-operator: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
UV_VERSION := 0.13.9
# uv installs no bytecode, and where PYTHONDONTWRITEBYTECODE is set none is ever written: every
# process (each operator a test starts) would compile all it imports again, 4.1 CPU-s for
# `import entra_rbac.runner` against 1.9 with bytecode. Unset, the first import writes it.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help
help: ## List the targets with what they do
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml sandbox/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv resolves and installs in parallel from its own cache: about 15 s where pip took 3.5 min
	@# (msgraph-sdk alone unpacks to ~390 MB). pip only bootstraps it, pinned for reproducibility.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' -e ./sandbox
	@touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create .venv: the product (editable), the sandbox distribution and the dev tools

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, import-linter layer contracts, vulture (dead code), hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/vulture
	$(BIN)/hadolint Dockerfile

.PHONY: format
format: $(STAMP) ## Rewrite the code in the project's format and apply safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: controlplane
controlplane: ## Build the real kube-apiserver, kube-controller-manager, etcd (Go 1.26+; or KUBEBUILDER_ASSETS)
	./hack/controlplane/build.sh

.PHONY: tools
tools: ## Build the Go tools (kstatus, helm, actionlint) into the cache; install lua5.1 and promtool (apt-get) if missing
	for tool in kstatus helm actionlint; do ./hack/tools/build.sh $$tool >/dev/null || exit 1; done
	@command -v lua5.1 >/dev/null && command -v promtool >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "tools: install lua5.1 and promtool (Debian: lua5.1, prometheus)"; exit 1; }; \
	  apt-get install -y --no-install-recommends lua5.1 prometheus >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends lua5.1 prometheus >/dev/null; }; }

# The folder holding the control plane: build.sh prints it last (KUBEBUILDER_ASSETS wins).
CONTROLPLANE_ENV = set -o pipefail; dir="$$(./hack/controlplane/build.sh | tail -1)" && ENTRA_RBAC_CONTROLPLANE="$$dir"

# Two pytest workers (pytest-xdist), each with its own control plane, a test file kept on one
# worker: most end-to-end time is waiting for the operator, so two files at once halve it.
# Files are handed out in collection order (--no-loadscope-reorder; xdist's default sends the
# files with most tests first, so the few-test, slow end-to-end files came last and one worker
# finished them alone): tests/controlplane and tests/e2e first, each worker's e2e files in one
# stretch (the e2e package's real-server preparation once per worker), the many small unit
# files last, filling the gaps.
# `make test TEST_WORKERS=0` runs in one process. The 25 slowest tests are listed at the end: the
# suite has a 12-minute budget on two cores (README).
TEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

.PHONY: test
# The e2e suite runs on the real control plane here (the referee); `make e2e-sandbox` runs it on
# the sandbox, whose agreement with the real server the differential tests hold.
test: lint controlplane tools ## Lint, then run every test that is not a benchmark (unit, integration, end to end)
	@$(CONTROLPLANE_ENV) ENTRA_RBAC_E2E_SERVERS="$${ENTRA_RBAC_E2E_SERVERS:-real}" $(BIN)/pytest $(PYTEST_PARALLEL) --durations=25

.PHONY: e2e-sandbox
e2e-sandbox: $(STAMP) ## The end-to-end suite on the sandbox API server (what `make demo` runs on)
	ENTRA_RBAC_E2E_SERVERS=sandbox $(BIN)/pytest tests/e2e

.PHONY: cluster
cluster: $(STAMP) controlplane ## Run the real control plane in the foreground with the CRD installed; Ctrl-C stops
	@$(CONTROLPLANE_ENV) $(BIN)/python -m tests.controlplane

.PHONY: unit
unit: $(STAMP) ## Run the unit tests only (fast, no servers)
	$(BIN)/pytest tests/unit

.PHONY: demo
demo: $(STAMP) ## Run the demo against the local sandbox (no cluster, no tenant needed)
	$(BIN)/entra-rbac demo

.PHONY: sandbox
sandbox: $(STAMP) ## Start the sandbox API server, Entra directory and operator; Ctrl-C stops
	$(BIN)/entra-rbac sandbox --directory examples/directory.yaml

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks and print their figures (slow; not part of `make test`)
	$(BIN)/pytest -m bench -s -p no:cacheprovider bench

.PHONY: conformance-matrix
# Not in `make test`: builds the oldest supported Kubernetes (1.30) once (~10 min cold), then runs
# tests/e2e on it and on the pinned release. MATRIX=1.30 runs the oldest alone.
conformance-matrix: $(STAMP) tools ## The end-to-end suite on Kubernetes 1.30 and the pinned release; results into docs/testing.md
	./hack/conformance-matrix.sh

.PHONY: e2e-kind
e2e-kind: $(STAMP) ## End-to-end suite on a kind cluster (needs Docker and kind; see docs/testing.md)
	./hack/e2e-kind.sh

.PHONY: clean
clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
