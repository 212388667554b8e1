# corvid.platform — the lab, the checks and the benchmarks.
#   make lab      create the lab hosts and converge the platform on them
#   make test     every check CI runs
# See README.md for the rest.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The controller needs Python >= 3.12 (ansible-core 2.20 and 2.21): the newest one found on
# PATH or under pyenv (lab/bin/find-python). PYTHON=/path/to/python3.x overrides it.
PYTHON ?= $(shell lab/bin/find-python)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest claimed ansible-core (see meta/runtime.yml): unit and sanity run on it too.
OLDEST_CORE := 2.20
VENV_OLDEST := .cache/venv-core$(OLDEST_CORE)
STAMP_OLDEST := $(VENV_OLDEST)/.installed
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

.PHONY: help venv docker images lab lab-up lab-aws-seed lab-registry lab-app-images lab-converge lab-summary lab-down lint unit sanity \
	functional functional-mcp venv-oldest molecule molecule-all lab-test build test checks-then-molecule bench clean

# Every target carries its description after "##"; `make help` lists them all.
help: ## this list
	@awk -F':.*## ' '/^[a-z][a-z0-9-]*:.*## / {printf "make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --clear: a venv made by an older Python (or an older pyproject.toml) is rebuilt whole.
$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python >= 3.12 found (ansible-core 2.20/2.21 need it on the controller); install python3.12 or newer (Debian 13: python3; elsewhere pyenv or your distribution), or set PYTHON=/path/to/python3.12" >&2; exit 1; }
	lab/bin/ensure-tools venv
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --group dev
	touch $@

$(STAMP_OLDEST): pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python >= 3.12 found" >&2; exit 1; }
	$(PYTHON) -m venv --clear $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/pip install --quiet --upgrade pip
	$(VENV_OLDEST)/bin/pip install --quiet --group oldest
	touch $@

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

venv: $(STAMP) $(COLLECTION_LINK) ## the controller venv (.venv: newest Python >= 3.12, ansible-core 2.21, the tooling)

venv-oldest: $(STAMP_OLDEST) $(COLLECTION_LINK) ## a second venv with the oldest claimed ansible-core (unit and sanity run on it)

docker: ## make sure a docker engine answers (installs docker.io and starts dockerd on Debian)
	@lab/bin/ensure-tools lab

images: docker ## build the lab's base images (debootstrap; rebuilt only when their inputs change)
	@for suite in $(SUITES); do lab/images/build $$suite; done

lab-up: venv images ## create the lab containers
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) lab/lab.yml

lab-converge: venv ## run playbooks/site.yml on the lab
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) playbooks/site.yml

lab-summary: venv ## what runs where in the lab
	@$(BIN)/python lab/bin/summary.py

# The lab's AWS endpoint: moto on objects1 (lab/s3), published on the machine. moto keeps its
# state in memory, so every `make lab` seeds it again (the seed is idempotent).
LAB_AWS_URL ?= https://localhost:9000
lab-aws-seed: venv ## seed the lab's AWS endpoint (moto on objects1): tagged EC2 instances, Secrets Manager secrets
	$(BIN)/python lab/aws/seed.py --endpoint-url $(LAB_AWS_URL) --ca-bundle .cache/pki/lab/ca.crt --wait 60

# One step after another, also under `make -j` (make test runs lab-test beside molecule-all):
# the seed needs objects1 up, the images need the registry, the converge needs the images.
LAB_STEPS := lab-up lab-aws-seed lab-registry lab-app-images lab-converge lab-summary
lab: venv images ## create the lab and converge the platform on it (run it again: 0 changed)
	@for step in $(LAB_STEPS); do $(MAKE) --no-print-directory $$step; done

# The app images go to the site's own registry (registry1) before the app tier pulls them.
lab-registry: venv ## certificates and the container registry on the lab's registry host
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) playbooks/pki.yml playbooks/registry.yml --limit registry

lab-app-images: venv ## build the agent service image and push its release tags to the lab registry (skips tags already there)
	lab/app/build-push

lab-down: venv docker ## remove the lab containers and network
	$(ANSIBLE_PLAYBOOK) -i $(LAB_INVENTORY) lab/lab.yml -e lab_state=absent
	rm -rf .cache/facts

lint: venv ## yamllint, ansible-lint (production profile), ruff, argument_specs keys, shellcheck
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tests/tools/check_argument_specs.py
	@lab/bin/ensure-tools lint
	shellcheck .ci/run lab/bin/ensure-tools lab/bin/find-python lab/bin/molecule-all lab/images/build lab/app/build-push tests/tools/sanity roles/*/files/*-check roles/app_containers/files/corvid_apps.fact molecule/*/files/*.sh

# On the newest and the oldest claimed ansible-core.
unit: venv venv-oldest ## pytest unit tests, on the newest and the oldest claimed ansible-core
	$(BIN)/pytest tests/unit
	$(VENV_OLDEST)/bin/pytest -q tests/unit

sanity: venv venv-oldest ## ansible-test sanity on the built collection, on both claimed ansible-core versions
	ANSIBLE_TEST_PYTHON=$(CURDIR)/$(BIN)/python tests/tools/sanity
	ANSIBLE_TEST_PYTHON=$(CURDIR)/$(VENV_OLDEST)/bin/python tests/tools/sanity

build: venv ## ansible-galaxy collection build and ansible-doc checks
	$(BIN)/pytest tests/build

functional: venv images ## pytest tests/functional: real servers on loopback, throwaway lab containers
	$(BIN)/pytest tests/functional

functional-mcp: venv ## only the MCP functional tests
	$(BIN)/pytest tests/functional/mcp

molecule: venv images ## one molecule scenario: make molecule SCENARIO=redis
	$(BIN)/molecule test -s $(SCENARIO)

# Two at a time by default: the scenarios wait on apt and systemd more than on the CPU.
MOLECULE_JOBS ?= 2
molecule-all: venv images ## every molecule scenario, MOLECULE_JOBS at a time (logs in .cache/molecule-logs)
	lab/bin/molecule-all $(MOLECULE_JOBS)

# From nothing: remove the lab, build it again, converge it, then check it.
lab-test: venv images ## remove the lab, make lab from nothing, then pytest tests/lab
	$(MAKE) --no-print-directory lab-down
	$(MAKE) --no-print-directory lab
	$(BIN)/pytest --durations=15 tests/lab

# Two streams side by side. The lab test (build the lab from nothing, converge it, test it:
# the longest part) in one; the checks and then the molecule scenarios (two at a time) in the
# other. The checks mostly use one core and the lab test mostly waits on apt, systemd and the
# lab's timers, so together they fill the machine. Each stream has containers and networks of
# its own. molecule-all writes a log per scenario (.cache/molecule-logs) and prints one line each.
CHECKS := lint unit sanity build functional
test: venv venv-oldest images ## every check CI runs: lab-test beside the checks then molecule-all; prints the total time
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory -j2 lab-test checks-then-molecule; \
	echo "make test: all checks passed in $$(( $$(date +%s) - start )) s"

checks-then-molecule: ## lint, unit, sanity, build, functional, then molecule-all (make test's second stream)
	@for step in $(CHECKS) molecule-all; do $(MAKE) --no-print-directory $$step; done

bench: venv images ## benchmarks: converge times and task counts, MCP checks, backups of 1 GB, the no-change run as the lab grows, a deploy under load, monitoring
	$(BIN)/python tests/bench/bench_lab.py
	$(BIN)/python tests/bench/bench_mcp.py
	$(BIN)/python tests/bench/bench_backup.py
	$(BIN)/python tests/bench/bench_scale.py
	$(BIN)/python tests/bench/bench_deploy.py
	$(BIN)/python tests/bench/bench_monitoring.py

clean: ## remove caches and test output
	rm -rf .cache/facts tests/output .pytest_cache .ruff_cache

distclean: clean ## clean, and remove the venvs and .cache
	rm -rf $(VENV) $(VENV_OLDEST) .cache
