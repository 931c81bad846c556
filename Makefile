# The two commands of the README. Each installs what it needs first (idempotent).
.PHONY: demo test install bench clean

install:
	@bash scripts/install.sh

demo: install
	.venv/bin/hub-emo demo $(ARGS)

test: install
	.venv/bin/python -m pytest -q $(ARGS)

bench: install
	@for b in benchmarks/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done

clean:
	rm -rf .venv build *.egg-info
