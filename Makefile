# Neutrino: `make up` runs it, `make test` tests it.  Both install what is missing.
VENV    ?= .venv
PYTHON  ?= python3
STAMP   := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
ARGS    ?=

.PHONY: install up test lint bench conformance clean

install: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/install-system-packages.sh
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

up: install
	$(VENV)/bin/neutrino up $(ARGS)

lint: install
	$(VENV)/bin/ruff check neutrino tests bench

test: install lint
	$(VENV)/bin/pytest -q -ra $(ARGS)

bench: install
	$(VENV)/bin/python bench/api_bench.py $(ARGS)

conformance: install
	bash scripts/conformance.sh
	bash scripts/conformance-fwaas.sh

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
