PY ?= .venv/bin/python
LOCALES = bot/locales

.PHONY: test lint i18n-extract i18n-update i18n-compile bench

test:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check .

# Pull every _("...") string into the template and merge it into each catalogue.
i18n-extract:
	$(PY) -m babel.messages.frontend extract -F babel.cfg -k _ -k __ --no-location \
		--omit-header -o $(LOCALES)/messages.pot bot handlers services processing presentation config transport routes
i18n-update: i18n-extract
	$(PY) -m babel.messages.frontend update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages --no-fuzzy-matching
i18n-compile:
	$(PY) -m babel.messages.frontend compile -d $(LOCALES) -D messages

# The replicas benchmark needs PostgreSQL and Redis: both are started for the run (the others ignore them).
bench:
	bash scripts/with-postgres bash scripts/with-redis $(PY) -m benchmarks
