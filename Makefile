# People's entry point. `make demo` and `make test` set everything up themselves.
.PHONY: setup demo test bench soak clean

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench: setup
	bash -c '. scripts/env.sh && python dnk_planner/benchmarks/bench_decision.py'

soak: setup
	bash -c '. scripts/env.sh && python dnk_planner/benchmarks/bench_soak.py --warmup 30 --out reports/bench/soak.json'

clean:
	rm -rf build install log .venv
