# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-quick soak clean systemd-tools postgres-tools plot-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p inbox
	$(BIN)/streamcount run --config config.toml

test: $(STAMP) lint systemd-tools postgres-tools plot-tools
	$(BIN)/python -m pytest

# systemd-analyze checks the unit file; install it where it is missing and we
# may (CI runs as root on Debian). Where it cannot be had, those tests skip.
systemd-tools:
	@command -v systemd-analyze >/dev/null || \
	  (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   apt-get update -qq && apt-get install -y -qq systemd >/dev/null) || \
	  echo "systemd-analyze is not installed and could not be; the unit-file tests will skip"

# The PostgreSQL tests start a throwaway server from Debian's binaries
# (initdb, pg_ctl); install them where they are missing and we may.
postgres-tools:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   apt-get update -qq && apt-get install -y -qq postgresql >/dev/null) || \
	  echo "PostgreSQL is not installed and could not be; its tests will skip (fail in CI)"

# Plots label words in Chinese; matplotlib ships no CJK font. Debian's
# fonts-wqy-microhei (4 MB) is installed where no font has Chinese glyphs.
plot-tools:
	@fc-list :lang=zh 2>/dev/null | grep -q . || ls /usr/share/fonts/truetype/wqy/*.ttc >/dev/null 2>&1 || \
	  (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   apt-get update -qq && apt-get install -y -qq fonts-wqy-microhei >/dev/null) || \
	  echo "no CJK font is installed and none could be; the plot tests will skip (fail in CI)"

lint: $(STAMP)
	$(BIN)/ruff check .

# Benchmarks need ../shared/corpus (or STREAMCOUNT_CORPUS). `bench`: the
# counting ceilings (`counted`, `counted-rs`) beside ingest, the daemon and its
# steady state, on the corpus x10, one round (a few minutes); `bench-quick`: every
# contender on a small slice. docs/benchmarks.md has the full commands and results.
bench: $(STAMP)
	$(BIN)/python -m bench.throughput --ceilings --rounds 1

bench-quick: $(STAMP)
	$(BIN)/python -m bench.throughput --quick

# Minutes of random writes, renames, rotations, links and deletes while the
# daemon is SIGKILLed now and then, and 300 random kills mid-stream: exactly
# once, checked against the reference count (the same tests run short in `make test`).
soak: $(STAMP)
	STREAMCOUNT_SOAK_SECONDS=$${SOAK_SECONDS:-300} STREAMCOUNT_CRASH_CYCLES=300 \
	  $(BIN)/python -m pytest -q -s tests/test_soak.py tests/test_crash.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
