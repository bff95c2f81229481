# People's entry point. `make demo` and `make test` set everything up themselves.
.PHONY: setup demo test bench soak arm-model table2 clean

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

# The shipped arm model from scratch (demos, teacher, pairs, students, export), resumable.
arm-model:
	bash scripts/arm_model.sh

# Table II in simulation over DDS (Kinova's meshes when ../shared has them), joint_trajectory mode (the mode
# that keeps the whole-arm guarantee, reports/table2/README.md). KDM needs `make arm-model` first and runs at
# the student's prior temperature. On 2 cores: 58 min for all five policies x 50 trials (3503 s, 2026-12-04), 27 of
# them the teacher's (15-90 s a trial, ~1.5 s per decision).
TABLE2_TRIALS ?= 50
ARM_ARTIFACTS ?= artifacts/arm
table2: setup
	bash -c '. scripts/env.sh && dnk-train arm-trials --trials $(TABLE2_TRIALS) --timeout 20 --policy student=shipped \
	  --policy student-int8=shipped --policy analytic=analytic --policy kdm=$(ARM_ARTIFACTS)/students/kdm.onnx,temperature=1.5 \
	  --policy teacher=shipped,timeout=90 \
	  $$([ -d ../shared/reference/kortex_gen3 ] && echo --description ../shared/reference/kortex_gen3) --out reports/table2'

clean:
	rm -rf build install log .venv
