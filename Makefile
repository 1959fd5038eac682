PY ?= python3

.PHONY: demo test install install-test bench dashboards

demo: install            ## install tapewatch and run the built-in demo (writes demo-out/)
	$(PY) -m consumers.cli demo --out-dir demo-out

test: install-test       ## install everything the suite needs and run all of it
	$(PY) -m pytest -q

install:
	bash scripts/install.sh

install-test:
	bash scripts/install.sh --test

bench: install-test      ## print the performance figures quoted in the README
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_replay.py
	$(PY) benchmarks/bench_service.py
	$(PY) benchmarks/bench_scrape.py
	$(PY) benchmarks/evaluate.py
