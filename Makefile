# Project commands. `make test` and `make demo` do all their own set-up on a fresh
# Debian/Ubuntu machine (as root): packages, virtualenv, private Docker engines.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
COLLECTION_ROOT := .cache/ansible_collections/airgap/docker

.PHONY: test demo bench bench-fleet bootstrap lint sanity unit integration engines-stop clean

# Lint, sanity and unit (a few minutes) run inside the integration stage (25 or so), on the cores
# its two sessions leave idle (tests/harness/integration.sh): lint and sanity from the start at the
# lowest CPU priority; unit, whose tests time themselves, once either session ends and frees a core.
# (SUBMAKE, not $(MAKE), in the recipe: a line naming $(MAKE) runs even under `make -n`.)
SUBMAKE = $(MAKE) --no-print-directory
test: bootstrap
	PY=$(PY) NICE_CHECKS='$(SUBMAKE) lint sanity' CHECKS='$(SUBMAKE) unit' tests/harness/integration.sh

bootstrap:
	tests/harness/bootstrap.sh

# ansible-lint resolves the role's modules through a collections path that holds this checkout.
LINT_COLLECTIONS := .cache/lint
lint:
	$(VENV)/bin/ruff check plugins tests bench
	$(VENV)/bin/antsibull-changelog lint
	mkdir -p $(LINT_COLLECTIONS)/ansible_collections/airgap && ln -sfn $(CURDIR) $(LINT_COLLECTIONS)/ansible_collections/airgap/docker
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(LINT_COLLECTIONS) $(VENV)/bin/ansible-lint --offline --profile production --nocolor roles/migrate
	cd $(LINT_COLLECTIONS)/ansible_collections/airgap/docker && PATH=$(CURDIR)/$(VENV)/bin:$$PATH antsibull-docs lint-collection-docs --plugin-docs .
	shellcheck tests/harness/*.sh

# ansible-test wants the collection under ansible_collections/<namespace>/<name>.
sanity:
	mkdir -p ~/.ansible/test/cache && cp tests/harness/get_pip_stand_in.py ~/.ansible/test/cache/get_pip_24_2.py
	rm -rf $(COLLECTION_ROOT) && mkdir -p $(COLLECTION_ROOT)
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t $(COLLECTION_ROOT)
	cd $(COLLECTION_ROOT) && git init -q && git add -A && \
	  PATH=$(CURDIR)/$(VENV)/bin:$$PATH ansible-test sanity --venv --python 3.11 --color no $(SANITY_ARGS)

# pytest-ansible links this checkout as the collection the unit tests import (run from here).
unit:
	$(PY) -m pytest -q tests/unit

# The integration tests install the built collection and use that copy, not this checkout. Two
# sessions run at once, the fleet's and the modules', on engines of their own.
integration:
	PY=$(PY) tests/harness/integration.sh

# Benchmarks against the Docker CLI and community.docker; results in bench/results/latest.*
BENCH_ARGS ?=
bench: bootstrap
	$(PY) bench/run.py $(BENCH_ARGS)

# Fan-out against the star on the shaped fleet (about an hour; --quick: a few minutes); results in
# bench/results/fleet.*. Nothing else may use the fleet meanwhile.
BENCH_FLEET_ARGS ?=
bench-fleet: bootstrap
	$(PY) bench/fleet.py $(BENCH_FLEET_ARGS)

demo: bootstrap
	tests/harness/demo.sh

engines-stop:
	tests/harness/fleet.sh stop
	tests/harness/engines.sh stop

clean:
	rm -rf .cache tests/output
