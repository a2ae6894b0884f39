# tabmail — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM ?= offscreen

.PHONY: run test lint unit test-slow bench screenshots package package-test clean

# Editable in setuptools' "compat" mode: a plain path in a .pth file. The default mode installs an
# import hook that every Python start in the venv imports first (~15 ms of a 30 ms start). A
# setuptools without compat mode gets the default one.
EDITABLE := --config-settings editable_mode=compat

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(EDITABLE) -e '.[test]' 2>/dev/null || $(PY) -m pip install -q -e '.[test]'
	touch $@

# PyInstaller (the `package` extra): for `make package` and the bundle tests in `make test`.
$(VENV)/.package-installed: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install -q $(EDITABLE) -e '.[package]' 2>/dev/null || $(PY) -m pip install -q -e '.[package]'
	touch $@

run: $(VENV)/.installed
	@bash tools/system-deps.sh run
	QT_QPA_PLATFORM= $(PY) -m tabmail

system-deps:
	@bash tools/system-deps.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check tabmail tests tools
	$(VENV)/bin/ruff format --check tabmail tests tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Tests run in TEST_WORKERS processes (pytest-xdist), a test file per process at a time: each
# process starts its own servers (PostgreSQL, Postfix/Dovecot, SMTP, SendGrid, Tabbycat) on free
# ports. TEST_WORKERS=0 runs everything in one process.
TEST_WORKERS ?= 2

unit: $(VENV)/.installed
	bash tools/with-keyring.sh $(PY) -m pytest -q -m "not slow" -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Everything CI runs: system packages, lint, types, layers, the whole suite (quick variants),
# including tests/test_packaging.py, which builds the PyInstaller bundle (~40 s on 2 cores) and
# runs the frozen app. PYTEST_ARGS='-m "not package"' skips that while iterating.
test: $(VENV)/.installed $(VENV)/.package-installed system-deps lint unit

# Heavy variants: the full crash loop and long soaks.
test-slow: $(VENV)/.installed system-deps
	TABMAIL_SLOW=1 bash tools/with-keyring.sh $(PY) -m pytest -q -m slow $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) -m tests.bench $(BENCH_ARGS)

screenshots: $(VENV)/.installed
	$(PY) tools/screenshots.py docs/screenshots

# The one-folder bundle: dist/tabmail/tabmail (packaging/README.md for Windows and macOS).
package: $(VENV)/.package-installed
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build packaging/tabmail.spec
	@du -sh dist/tabmail

# The bundle tests against what `make package` just built (no second build).
package-test: package system-deps
	TABMAIL_PACKAGE_DIST=dist bash tools/with-keyring.sh $(PY) -m pytest -q -m package $(PYTEST_ARGS)

clean:
	rm -rf build dist .mypy_cache .ruff_cache
