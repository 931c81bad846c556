# The two commands of the README. Each installs what it needs first (idempotent).
.PHONY: demo test test-all install bench clean

install:
	@bash scripts/install.sh

demo: install
	.venv/bin/hub-emo demo $(ARGS)

# The default suite skips tests marked slow (a second demo run, torchrun, client retries);
# `make test-all` runs them too. The import-graph contract (tests/test_architecture.py) is in both.
test: install
	.venv/bin/python -m pytest -q -m "not slow" $(ARGS)

test-all: install
	.venv/bin/python -m pytest -q $(ARGS)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

clean:
	rm -rf .venv build *.egg-info
