# A newcomer's commands: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint types bench soak sandbox clean

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Azure Functions runs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m rotation demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: $(STAMP)
	$(VENV)/bin/mypy --strict rotation

test: lint types infra-check
	$(PY) -m pytest -q

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

bench: $(STAMP)
	$(PY) -m bench

# Longer reliability run: 1,000 forced rotations per grace setting under injected faults.
soak: $(STAMP)
	RELIABILITY_ROTATIONS=1000 $(PY) -m pytest -q tests/reliability/test_consumer_continuity.py

sandbox: $(STAMP)
	$(PY) -m sandbox

clean:
	rm -rf $(VENV) $(INFRA_VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
