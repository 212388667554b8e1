# corvid.platform — the lab, the checks and the benchmarks.
#   make lab      create the lab hosts and converge the platform on them
#   make test     every check CI runs
# See README.md for the rest.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The controller needs Python >= 3.11 (ansible-core 2.19); take the first one found.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	  && { command -v $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COLLECTION_LINK := .cache/collections/ansible_collections/corvid/platform
SUITES := bookworm trixie
SCENARIO ?= redis
ANSIBLE_PLAYBOOK := $(BIN)/ansible-playbook
LAB_INVENTORY := inventories/lab
# Base-image debootstrap cache and the lab hosts' apt caches (lab/images/build, lab/lab.yml,
# molecule/shared/create.yml all read it).
export CORVID_LAB_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/corvid-lab
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help venv docker images lab lab-up lab-converge lab-summary lab-down lint unit sanity \
	integration integration-mcp molecule molecule-all lab-test build test bench clean

help:
	@echo "make lab          create the lab and converge the platform on it (run it again: 0 changed)"
	@echo "make test         every check CI runs (lint, unit, sanity, build, integration, molecule, lab)"
	@echo "make lab-down     remove the lab containers and network"
	@echo "make lint         yamllint, ansible-lint (production profile), ruff, argument_specs keys"
	@echo "make unit         pytest unit tests"
	@echo "make sanity       ansible-test sanity on a copy of the collection"
	@echo "make integration  pytest integration tests (real servers on loopback, lab containers)"
	@echo "make molecule SCENARIO=redis   one molecule scenario; molecule-all runs them all"
	@echo "make bench        benchmarks: lab converge times and task counts, MCP checks"

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: Python >= 3.11 is needed for ansible-core 2.19; install python3.11 or newer" >&2; exit 1; }
	lab/bin/ensure-tools venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --group dev
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

venv: $(STAMP) $(COLLECTION_LINK)

docker:
	@lab/bin/ensure-tools lab

images: docker
	@for suite in $(SUITES); do lab/images/build $$suite; done

lab-up: venv images
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) lab/lab.yml

lab-converge: venv
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) playbooks/site.yml

lab-summary: venv
	@$(BIN)/python lab/bin/summary.py

lab: lab-up lab-converge lab-summary

lab-down: venv docker
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) lab/lab.yml -e lab_state=absent
	rm -rf .cache/facts

lint: venv
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/tools/check_argument_specs.py
	@lab/bin/ensure-tools lint
	shellcheck .ci/run lab/bin/ensure-tools lab/images/build tests/tools/sanity

unit: venv
	$(BIN)/pytest tests/unit

sanity: venv
	ANSIBLE_TEST_PYTHON=$(CURDIR)/$(BIN)/python tests/tools/sanity

build: venv
	$(BIN)/pytest tests/build

integration: venv images
	$(BIN)/pytest tests/integration

integration-mcp: venv
	$(BIN)/pytest tests/integration/mcp

molecule: venv images
	$(BIN)/molecule test -s $(SCENARIO)

molecule-all: venv images
	$(BIN)/molecule test --all

# From nothing: remove the lab, build it again, converge it, then check it.
lab-test: venv
	$(MAKE) --no-print-directory lab-down
	$(MAKE) --no-print-directory lab
	$(BIN)/pytest tests/lab

test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory lint unit sanity build integration molecule-all lab-test; \
	echo "make test: all checks passed in $$(( $$(date +%s) - start )) s"

bench: venv images
	PYTHONPATH=tests/tools $(BIN)/python tests/bench/bench_lab.py
	$(BIN)/python tests/bench/bench_mcp.py

clean:
	rm -rf .cache/facts tests/output .pytest_cache .ruff_cache
