# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Each installs only what is missing or out of date (stamps below), so a second run installs
# nothing.

VENV := .venv
STAMP_SYSTEM := .steward/system.stamp
STAMP_PYTHON := $(VENV)/.steward-installed
STAMP_JARS := .jars/.steward-installed
PYTEST_ARGS ?=

.PHONY: install demo test lint doctor clean

install: $(STAMP_SYSTEM) $(STAMP_PYTHON) $(STAMP_JARS)

$(STAMP_SYSTEM): scripts/install.sh
	scripts/install.sh system
	@mkdir -p $(dir $@) && touch $@

$(STAMP_PYTHON): pyproject.toml requirements.lock
	scripts/install.sh python
	@touch $@

$(STAMP_JARS): pom.xml
	scripts/install.sh jars
	@touch $@

demo: install
	$(VENV)/bin/steward demo

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

doctor: install
	$(VENV)/bin/steward doctor --spark

clean:
	rm -rf lake .steward
