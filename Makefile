# Two commands on a fresh clone: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze

.PHONY: demo test lint typecheck check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python demo/run_demo.py

lint: $(STAMP)
	$(BIN)/ruff check retentiond tests bench demo

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck $(CHROMIUM) $(SYSTEMD_ANALYZE)
	$(BIN)/pytest

# The report's browser test drives Debian's chromium; installed here when missing (as root).
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "no $(CHROMIUM): run 'sudo apt-get install chromium' (the browser test skips)"; fi

# The unit-file tests run systemd-analyze verify/security; installed here when missing.
$(SYSTEMD_ANALYZE):
	@if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
		apt-get install -y -qq --no-install-recommends systemd; \
	else echo "no $(SYSTEMD_ANALYZE): run 'sudo apt-get install systemd' (deploy tests skip)"; fi

bench: $(STAMP)
	$(BIN)/python bench/bench_enforce.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
