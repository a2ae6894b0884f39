# tabmail — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: run test lint unit test-slow bench screenshots package clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.installed
	QT_QPA_PLATFORM= $(PY) -m tabmail

system-deps:
	@bash tools/system-deps.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tabmail tests tools
	$(VENV)/bin/ruff format --check tabmail tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: $(VENV)/.installed
	bash tools/with-keyring.sh $(PY) -m pytest -q $(PYTEST_ARGS)

# Everything CI runs: system packages, lint, types, layers, the whole suite (quick variants).
test: $(VENV)/.installed system-deps lint unit

# Heavy variants: the full crash loop and long soaks.
test-slow: $(VENV)/.installed system-deps
	TABMAIL_SLOW=1 bash tools/with-keyring.sh $(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m tests.bench $(BENCH_ARGS)

screenshots: $(VENV)/.installed
	$(PY) tools/screenshots.py docs/screenshots

package: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[package]'
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build packaging/tabmail.spec

clean:
	rm -rf build dist .mypy_cache .ruff_cache
