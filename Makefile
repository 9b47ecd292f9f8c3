# The two commands a fresh machine needs: `make demo` and `make test`. Both set everything up first.
VENV := .venv
STAMP := $(VENV)/.rhlab-setup-stamp

.PHONY: demo test bench setup

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

setup: $(STAMP)

# The embedded model is converted in its own process first, so no stage carries the conversion's memory.
demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/rhlab model prepare
	$(VENV)/bin/rhlab run configs/experiments/demo.yaml --run-dir runs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/python bench/sandbox.py
	$(VENV)/bin/python bench/grading.py
	HF_HUB_OFFLINE=1 $(VENV)/bin/python bench/probes.py
