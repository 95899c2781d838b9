# Two commands do everything on a fresh Debian machine:
#   make run    install what is missing, then start the studio on http://127.0.0.1:7860
#   make test   install what is missing, then run lint and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := $(shell cat packages.txt) chromium
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: run test lint bench system-packages install clean

run: install
	$(PY) app.py

test: install
	$(PY) -m ruff check .
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check .

bench: install
	$(PY) -m studio bench

install: system-packages $(STAMP)

# Debian packages: FluidSynth and its GM soundfont (synthesis), Chromium (browser tests).
system-packages:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# The virtual environment, rebuilt when a requirements file changes. torch is pinned to the local CPU wheel.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python packages into $(VENV) (log: $(VENV)/pip.log)"
	@$(PY) -m pip install -r requirements-dev.txt > $(VENV)/pip.log 2>&1 || { grep -v '^WARNING: Location' $(VENV)/pip.log | tail -30; exit 1; }
	@$(PY) -m pip install --no-deps -e . >> $(VENV)/pip.log 2>&1 || { tail -30 $(VENV)/pip.log; exit 1; }
	$(PY) -c "import torch, fluidsynth, gradio, lameenc, music21, mido, pretty_midi, pypianoroll, safetensors"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
