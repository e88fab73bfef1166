# Every command a user runs goes through these targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)

.PHONY: venv test test-postgres bench clean

venv: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

## Run the whole test suite (SQLite for the Django tests).
test: venv
	HF_HUB_OFFLINE=1 $(PY) -m pytest

## Run the Django tests against PostgreSQL (DATABASE_URL, default: the local test server).
test-postgres: venv
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} HF_HUB_OFFLINE=1 $(PY) -m pytest tests/studyapp

clean:
	rm -rf $(VENV) .pytest_cache
