# Two commands do the whole set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck pytest bench lock clean serve i18n

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "publisher needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

# The demo newsroom covers the Americas (COVERAGE; an explicit PUBLISHER_COVERAGE wins).
demo: $(STAMP)
	PUBLISHER_COVERAGE=$${PUBLISHER_COVERAGE:-americas} $(BIN)/publisher demo

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# axe-core and doiuse-email (pinned in package-lock.json) for the accessibility and email-client
# checks; without npm, or offline, those tests skip and say why.
JS_STAMP := node_modules/.package-lock.json

$(JS_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error \
	  || echo "npm ci failed: the axe-core and doiuse-email checks will skip"; \
	else echo "npm not found: the axe-core and doiuse-email checks will skip"; fi

# Two processes: tests wait on Chromium, PostgreSQL and SMTP as much as on the CPU.
pytest: $(STAMP) $(JS_STAMP)
	$(BIN)/pytest -q -n 2

bench: $(STAMP)
	$(BIN)/python bench/run.py

serve: $(STAMP)
	PUBLISHER_COVERAGE=$${PUBLISHER_COVERAGE:-americas} $(BIN)/publisher serve

# Translations: extract messages from the code and templates into messages.pot, merge them
# into every language's .po (new ones arrive empty; translate them), then compile the .mo files
# (optional: the app compiles a .po in memory when its .mo is missing or older).
I18N_KEYWORDS := -k N_ -k gettext -k ngettext:1,2
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg $(I18N_KEYWORDS) --no-location --sort-output --omit-header -o publisher/locale/messages.pot .
	$(BIN)/pybabel update -i publisher/locale/messages.pot -d publisher/locale --no-fuzzy-matching --width 100 --ignore-obsolete
	$(BIN)/pybabel compile -d publisher/locale --statistics

# Re-pin every dependency after changing pyproject.toml.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^publisher' > requirements.lock

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
