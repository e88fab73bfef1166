# Every command a user runs goes through these targets.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)

.PHONY: venv test test-postgres demo demo-setup demo-usefulness report bench clean

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

## Run the Django tests (study app, reliability) against PostgreSQL (DATABASE_URL, default: the local test server).
test-postgres: venv
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} HF_HUB_OFFLINE=1 $(PY) -m pytest tests/studyapp tests/reliability

## ---------------------------------------------------------------------------------------------
## The demo: bundled MNIST 3-vs-8 → BLA-T, L2X-F, CAM → stimuli → an open study on SQLite.
## Every step is a file target, so running `make demo` again reuses what exists.
DEMO ?= demo
DEMO_STUDY ?= mnist38-demo
DEMO_USEFULNESS_STUDY ?= mnist38-distinction
DEMO_PORT ?= 8000
DEMO_BOTS ?= 20
# The paper's §4.1 defaults: CNN and module trained end to end, θ = 0.1, its 1,125 Adam steps (see README).
DEMO_TRAIN := --dataset mnist38 --seed 0
DEMO_ENV := DATABASE_URL=sqlite:///$(CURDIR)/$(DEMO)/db.sqlite3 MEDIA_ROOT=$(CURDIR)/$(DEMO)/media HF_HUB_OFFLINE=1
RUNS := $(DEMO)/runs
EXPL := $(DEMO)/explanations
EXPLANATIONS := $(EXPL)/mnist38_bla_t.npz $(EXPL)/mnist38_l2x_f.npz $(EXPL)/mnist38_cam.npz

$(RUNS)/bla_t/checkpoint.pt: | $(STAMP)
	$(PY) -m bla_core train --method bla_t $(DEMO_TRAIN) --out $(RUNS)/bla_t

$(RUNS)/l2x_f/checkpoint.pt: $(RUNS)/bla_t/checkpoint.pt
	$(PY) -m bla_core train --method l2x_f $(DEMO_TRAIN) --baseline $(RUNS)/bla_t/baseline --out $(RUNS)/l2x_f

$(EXPL)/mnist38_bla_t.npz: $(RUNS)/bla_t/checkpoint.pt
	$(PY) -m bla_core explain --run $(RUNS)/bla_t --split val --out $@

$(EXPL)/mnist38_l2x_f.npz: $(RUNS)/l2x_f/checkpoint.pt
	$(PY) -m bla_core explain --run $(RUNS)/l2x_f --split val --out $@

$(EXPL)/mnist38_cam.npz: $(RUNS)/bla_t/checkpoint.pt
	$(PY) -m bla_core explain --run $(RUNS)/bla_t/baseline --method cam --split val --out $@

$(DEMO)/stimuli/manifest.json: $(EXPLANATIONS)
	rm -rf $(DEMO)/stimuli
	$(PY) -m generation build --explanations $(EXPLANATIONS) --per-type 12 --seed 0 --out $(DEMO)/stimuli
	$(PY) -m generation validate $(DEMO)/stimuli

# The usefulness study of the demo (distinction, HIVE): each trial shows one digit and one panel per
# class (the method's map for "3" and for "8"); which panel explains the model's prediction?
$(DEMO)/usefulness/manifest.json: $(EXPLANATIONS)
	rm -rf $(DEMO)/usefulness
	$(PY) -m generation usefulness --task distinction --explanations $(EXPLANATIONS) --per-method 12 --seed 0 \
		--out $(DEMO)/usefulness
	$(PY) -m generation validate $(DEMO)/usefulness

## Everything up to an open study and a researcher login (who owns it), without starting the server.
demo-setup: $(DEMO)/stimuli/manifest.json
	$(DEMO_ENV) $(PY) manage.py migrate --no-input -v 0
	$(DEMO_ENV) $(PY) manage.py create_researcher --username researcher
	$(DEMO_ENV) $(PY) manage.py import_stimuli $(DEMO)/stimuli --study $(DEMO_STUDY) \
		--title "Which explanation is more reasonable? (demo)" --owner researcher --open -v 0

## The usefulness study beside it, in the same database: a distinction bundle from the same explanations
## (a demo folder whose explanations predate class maps is left as it is, with a note).
HAS_CLASS_MAPS := $(PY) -c 'import sys, numpy; sys.exit(any("class_maps" not in numpy.load(f).files for f in sys.argv[1:]))'
demo-usefulness: demo-setup
	@if $(HAS_CLASS_MAPS) $(EXPLANATIONS); then \
		$(MAKE) --no-print-directory $(DEMO)/usefulness/manifest.json && \
		$(DEMO_ENV) $(PY) manage.py import_stimuli $(DEMO)/usefulness --study $(DEMO_USEFULNESS_STUDY) \
			--title "Which explanation shows the system's answer? (demo)" --owner researcher --open -v 0; \
	else \
		echo "note: the explanations in $(EXPL) predate class maps, so the usefulness study is left out (rm -r $(DEMO) and make demo again to get it)"; \
	fi

## Train, explain, build stimuli, open both studies, start the server and print the links.
demo: demo-setup demo-usefulness
	$(DEMO_ENV) DEMO_STUDY=$(DEMO_STUDY) DEMO_USEFULNESS_STUDY=$(DEMO_USEFULNESS_STUDY) DEMO_PORT=$(DEMO_PORT) \
		DEMO_DIR=$(DEMO) DEMO_BOTS=$(DEMO_BOTS) PY=$(PY) bash scripts/serve_demo.sh

## The analysis report of a study (default: the demo's; it has only simulated participants, so
## they are counted there — for any other study they are left out unless REPORT_FLAGS says so).
STUDY ?= $(DEMO_STUDY)
REPORT_FLAGS ?= $(if $(filter $(DEMO_STUDY),$(STUDY)),--include-simulated,)
report: | $(STAMP)
	$(DEMO_ENV) $(PY) manage.py export_responses --study $(STUDY) --out $(DEMO)/exports/$(STUDY)
	$(PY) -m analysis report --export-dir $(DEMO)/exports/$(STUDY) --out $(DEMO)/reports/$(STUDY) $(REPORT_FLAGS)
	@echo "open $(DEMO)/reports/$(STUDY)/report.html"

clean:
	rm -rf $(VENV) .pytest_cache
