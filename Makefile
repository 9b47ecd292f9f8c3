# The two commands a fresh machine needs: `make demo` and `make test`. Both set everything up first.
VENV := .venv
STAMP := $(VENV)/.rhlab-setup-stamp

.PHONY: demo test bench setup

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rhlab run configs/experiments/demo.yaml --run-dir runs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/sandbox.py
	$(VENV)/bin/python bench/grading.py
