# A newcomer's commands: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Azurite (the Azure Storage emulator the sandbox runs for the per-app leases), pinned in
# sandbox/npm/package-lock.json and installed into sandbox/npm/node_modules (gitignored);
# set up with the venv by every target that starts a sandbox.
NPM_DIR := sandbox/npm
NPM_STAMP := $(NPM_DIR)/node_modules/.installed
SETUP := $(STAMP) $(NPM_STAMP)

.PHONY: demo test test-fast lint types bench soak sandbox clean docs

# Exactly the locked files (pip's hash-checking mode): requirements.txt is what the Function App
# deploys, requirements-dev.txt adds the tools (both from pyproject.toml: tests/lockfile.py).
$(STAMP): requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Azure Functions runs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

$(NPM_STAMP): $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js and npm are required: the sandbox runs Azurite, the Azure Storage emulator"; exit 1; }
	npm ci --prefix $(NPM_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

demo: $(SETUP)
	$(PY) -m demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy --strict rotation

# Everything, its independent parts at once (make -j): the two venvs and the npm installs
# side by side, then mypy and checkov beside pytest. One after the other these set-up phases
# took a fresh clone 245 s before pytest started, mypy alone 116 s of one core (no cache yet:
# it reads every SDK's types); side by side pytest starts after about 80 s (see README).
# Output: mypy's and checkov's lines may land among pytest's dots.
.PHONY: suite
test:
	@$(MAKE) --no-print-directory -j4 lint types infra-check suite

# The whole suite on parallel workers (pytest-xdist; most sandbox tests wait on timers and
# sockets more than they compute, so more workers than cores still helps: see README; 4 were
# no faster than 3 over tests/function, 139 s and 140 s).
TEST_WORKERS ?= 3
suite: lint kql-deps $(NPM_STAMP)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# A contributor's loop (under a minute): lint, then every test that starts no sandbox and is
# not marked slow (tests/conftest.py marks what uses the `sandbox` fixture).
test-fast: lint kql-deps $(NPM_STAMP)
	$(PY) -m pytest -q -m "not slow and not uses_sandbox"

# checkov over infra/ in its own venv (its dependencies clash with the app's); see
# infra/requirements-check.txt for why pycep-parser is lifted past checkov's pin.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
PYCEP := pycep-parser==0.7.1

$(INFRA_STAMP): infra/requirements-check.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	echo '*' > $(INFRA_VENV)/.gitignore
	$(INFRA_VENV)/bin/python -m pip install --quiet -r infra/requirements-check.txt
	$(INFRA_VENV)/bin/python -m pip install --quiet --no-deps $(PYCEP)
	touch $(INFRA_STAMP)

.PHONY: infra-check
infra-check: $(INFRA_STAMP)
	$(INFRA_VENV)/bin/python infra/scripts/checkov_gate.py

# Microsoft's Kusto language service (npm, pinned by tests/infra/kql/package-lock.json), with
# which tests/infra/test_workbook.py parses every workbook and alert query offline.
KQL_DIR := tests/infra/kql
KQL_STAMP := $(KQL_DIR)/node_modules/.installed

$(KQL_STAMP): $(KQL_DIR)/package.json $(KQL_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "Node.js and npm are required for the KQL check"; exit 1; }
	npm ci --prefix $(KQL_DIR) --no-audit --no-fund --loglevel=error
	touch $(KQL_STAMP)

.PHONY: kql-deps
kql-deps: $(KQL_STAMP)

# Every generated part of the docs, rewritten from the code it describes: README's settings
# table and local.settings.example.json (rotation/settings.py), docs/openapi.yaml's schemas
# (rotation/answers.py), README's error codes (rotation/error_codes.py) and Performance figures
# (bench/results/latest.json). `make test` fails while any of them differs from what it renders.
docs: $(STAMP)
	$(PY) -m tests.settings_doc --write
	$(PY) -m tests.openapi_doc --write
	$(PY) -m tests.error_codes_doc --write
	$(PY) -m tests.bench_doc --write

bench: $(SETUP)
	$(PY) -m bench

# Longer reliability run: 1,000 forced rotations per grace setting under injected faults,
# 20,000 fuzzed requests through the HTTP trigger (2,000 in `make test`), and 150 malformed
# upstream answers (one item, one field; 6 in `make test`).
soak: $(SETUP)
	RELIABILITY_ROTATIONS=1000 HTTP_FUZZ_EXAMPLES=20000 MALFORMED_ANSWER_EXAMPLES=150 \
		$(PY) -m pytest -q tests/reliability/test_consumer_continuity.py \
		tests/reliability/test_http_fuzz.py tests/reliability/test_malformed_answers.py

sandbox: $(SETUP)
	$(PY) -m sandbox

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(KQL_DIR)/node_modules $(NPM_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache .hypothesis
