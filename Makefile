# Darkroom: `make run` starts the whole system on the embedded store, `make test` runs every suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SERVICES := services/catalog services/processor services/gateway services/batch

export HOST ?= 127.0.0.1
export CATALOG_PORT ?= 8001
export PROCESSOR_PORT ?= 8002
export GATEWAY_PORT ?= 8000
export GATEWAY_CATALOG_URL ?= http://$(HOST):$(CATALOG_PORT)
export GATEWAY_PROCESSOR_URL ?= http://$(HOST):$(PROCESSOR_PORT)

# The catalog's write key for `make run`, made once and kept (git-ignored with data/).
KEY_FILE := data/api-key
# What docker compose gives the catalog and the gateway; holds a real key, never committed.
DEPLOY_ENV := deploy/darkroom.env

.PHONY: help install dev run import test lint docs check-browser check-docker docker-base \
	docker-wheels docker-smoke clean deploy-env

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: $(SERVICES:%=%/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e 'services/catalog[mongo]' -e services/processor -e services/gateway -e services/batch 'honcho>=2.0'
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed  ## Create .venv and install the three services

dev: $(VENV)/.dev-installed  ## Also install the test and lint tools

import: install  ## Import samples/ into the embedded catalog under ./data (idempotent)
	$(BIN)/python -m catalog.importer samples

$(KEY_FILE):
	$(PYTHON) tools/api_key.py $@

run: import $(KEY_FILE)  ## Start catalog, processor and gateway (writes need the key in data/api-key)
	CATALOG_API_KEYS="$$(cat $(KEY_FILE))" GATEWAY_CATALOG_KEY="$$(cat $(KEY_FILE))" \
		PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

$(DEPLOY_ENV): | deploy/darkroom.env.example
	$(PYTHON) tools/api_key.py --template deploy/darkroom.env.example $@

deploy-env: $(DEPLOY_ENV)  ## Make deploy/darkroom.env for docker compose, with its own key (once)

lint: dev  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

docs: install  ## Regenerate docs/operations.md from the processor's registry
	$(BIN)/python tools/operations_doc.py

check-browser:  ## Install Debian's chromium when it is missing
	tools/ensure-chromium.sh

# Without an engine (not root, no apt) this says why and goes on: the docker tests then skip.
check-docker:  ## Install Debian's docker.io, docker-compose and debootstrap when missing; start dockerd
	tools/ensure-docker.sh || echo "The docker-marked tests will be skipped."

docker-base:  ## Build the local base image darkroom-base:bookworm with debootstrap (kept once built)
	tools/ensure-docker.sh
	tools/docker-base.sh

docker-wheels:  ## Fill services/*/wheels/ so the images build with pip --no-index
	tools/docker-wheels.sh

docker-smoke: dev  ## Build the base image, wheelhouse and images; run the stack and its smoke test
	tools/ensure-docker.sh
	$(BIN)/pytest -m docker -rs tests/docker

test: dev check-browser check-docker lint  ## Install everything the tests need, then run every suite
	$(BIN)/pytest

clean:  ## Remove the venv, the embedded catalog data and the wheelhouse
	rm -rf $(VENV) data deploy/.cache services/*/wheels
