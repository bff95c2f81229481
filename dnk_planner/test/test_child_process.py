"""Child processes (planner, sim, recorder) never block on their own log output.

Table II's teacher run froze after 16 trials: its planner's stdout was a pipe nobody read, and at
64 KiB of deadline-miss warnings the next log line blocked the node, control loop and lifecycle
services with it.
"""
from __future__ import annotations

import sys

from dnk_planner.ros.client import ChildProcess, PlannerClient, stop_process

LOUD = 300_000  # bytes: several pipe buffers' worth


def test_a_child_writing_more_than_a_pipe_holds_runs_to_the_end_and_keeps_all_its_output() -> None:
    code = f"import sys; sys.stdout.write('x' * {LOUD}); sys.stderr.write('tail on stderr\\n')"
    proc = ChildProcess([sys.executable, "-c", code])
    assert proc.wait(timeout=30) == 0  # nobody reads while it runs: a pipe would block it at 64 KiB
    out = stop_process(proc)
    assert out.count("x") == LOUD
    assert out.endswith("tail on stderr\n")


def test_reading_a_running_childs_output_does_not_overwrite_what_it_writes_next() -> None:
    code = "import time; print('first'); time.sleep(1.0); print('second'); time.sleep(60)"
    proc = ChildProcess([sys.executable, "-c", code])
    try:
        PlannerClient.wait_for(lambda: "first" in proc.output(), 20, "the child's first line")
        PlannerClient.wait_for(lambda: "second" in proc.output(), 20, "the child's second line")
    finally:
        out = stop_process(proc)  # SIGINT ends the sleep
    assert out.splitlines()[:2] == ["first", "second"]
