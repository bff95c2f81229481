"""MuJoCo evaluation bridge (D4RL-style), Table I metrics and report; CLI `dnk-eval`."""
