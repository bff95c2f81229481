"""`dnk-train` subcommands of the arm task (listed in `dnk_training.cli.build_parser`)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..subcommands import Handler, Subcommands, add_set_arg, parse_overrides

if TYPE_CHECKING:
    from .trials import Policy

COMMANDS = Subcommands()


@COMMANDS.add("gen-arm-demos", "generate the arm demonstrations: seeded scenes, whole-arm-clear B-spline paths "
              "at 20 Hz, validated, in resumable shards")
def _gen_arm_demos(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--out", default="datasets/arm_demos", help="demo folder (resumes when it exists)")
    p.add_argument("--preset", default="small", help="preset in config/arm_demos.yaml (smoke, small, paper)")
    add_set_arg(p, "scenes=500")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    def run(args: argparse.Namespace) -> int:
        from .config import load_demo_config
        from .demos import generate_demos

        cfg = load_demo_config(args.preset, parse_overrides(args.set, "scenes=500"))
        index = generate_demos(cfg, args.out, workers=args.workers or None, progress=not args.no_progress)
        print(json.dumps(index["summary"], indent=1))
        return 0

    return run


@COMMANDS.add("arm-trials", "Table II in simulation: closed-loop trials of each policy over ROS 2 DDS on the same "
              "unseen seeded scenes; JSON, Markdown and PNGs")
def _arm_trials(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--policy", action="append", default=[],
                   metavar="NAME=MODEL.onnx[,trials=N][,timeout=S][,PARAM=VALUE]",
                   help="a policy and its model (repeat); MODEL 'analytic' generates the hand-written primitives "
                   "model, 'shipped' is dnk_bringup/models/arm-NAME.onnx; trials / timeout override --trials / "
                   "--timeout for it, any other PARAM is a planner node parameter for it only (e.g. "
                   "w_progress=30). Default: the shipped student and teacher, and analytic (each at its manifest's prior "
                   "temperature)")
    p.add_argument("--trials", type=int, default=50, help="scenes per policy (the same scenes for every policy)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per trial")
    p.add_argument("--seed", type=int, default=None, help="scene seed (default: trials.TRIAL_SEED)")
    p.add_argument("--description", default="", help="sim_gen3 description_path: Kinova's gen3.urdf + meshes folder "
                   "(e.g. ../shared/reference/kortex_gen3); '' = the sim's default")
    p.add_argument("--out", default="reports/table2", help="report folder")
    p.add_argument("--controller-mode", choices=("pose", "twist", "joint_trajectory"), default="joint_trajectory",
                   help="what the planner commands and the sim follows (pose: the paper's Cartesian targets at 20 Hz)")
    p.add_argument("--resume", action="store_true", help="keep the trials already in <out>/table2.json (same "
                   "models and seed) and run the rest")

    def run(args: argparse.Namespace) -> int:
        import shlex
        import sys

        from .config import load_demo_config
        from .table2 import run_table
        from .trials import TRIAL_SEED, domain_id

        domain_id()
        out = Path(args.out)
        specs = args.policy or ["student=shipped", "teacher=shipped", "analytic=analytic"]
        policies = [parse_policy(spec, out) for spec in specs]
        sim = [f"description_path:={Path(args.description).resolve()}"] if args.description else []
        given = sys.argv[2:] if sys.argv[1:2] == ["arm-trials"] else []
        command = " ".join(["dnk-train", "arm-trials", *(shlex.quote(a) for a in given if a != "--resume")])
        report = run_table(policies, load_demo_config("small"), args.trials, out, args.timeout, sim, [],
                           seed=TRIAL_SEED if args.seed is None else args.seed, command=command, resume=args.resume,
                           controller_mode=args.controller_mode)
        print(json.dumps(report["table"], indent=1))
        return 0

    return run


def parse_policy(spec: str, out: Path) -> Policy:
    """`NAME=MODEL[,trials=N][,timeout=S][,PARAM=VALUE...]` as a trials.Policy; PARAMs are node parameters."""
    from .trials import Policy  # late: the trials module compiles the whole-arm kernels

    name, _, rest = spec.partition("=")
    model, *options = rest.split(",")
    if not name or not model:
        raise ValueError(f"--policy {spec!r}: write NAME=MODEL.onnx (or NAME=analytic, NAME=shipped)")
    extra = dict(o.split("=", 1) for o in options if "=" in o)
    if len(extra) != len(options):
        raise ValueError(f"--policy {spec!r}: options are trials=N, timeout=S or PARAM=VALUE, comma-separated")
    params = tuple(f"{k}:={v}" for k, v in extra.items() if k not in ("trials", "timeout"))
    return Policy(name, resolve_model(model, name, out), int(extra["trials"]) if "trials" in extra else None,
                  float(extra["timeout"]) if "timeout" in extra else None, params)


def resolve_model(model: str, name: str, out: Path) -> Path:
    """A model argument: a path, 'analytic' (the hand-written primitives model, written under
    out/models) or 'shipped' (dnk_bringup/models/arm-<name>.onnx)."""
    if model == "analytic":
        from dnk_planner.testing.models import build_arm_primitive_model

        path = out / "models" / "arm-primitives.onnx"
        build_arm_primitive_model(path, horizon=32)
        return path
    if model == "shipped":
        from dnk_bringup.paths import model_file

        return model_file(f"arm-{name}.onnx")
    return Path(model)


@COMMANDS.add("arm-start", "screen arm models offline: one decision at the start of each unseen scene (feasible "
              "candidate or not, candidate spread), through the planner core with the node's settings")
def _arm_start(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--model", action="append", required=True, metavar="MODEL",
                   help="a .onnx, 'analytic', or 'shipped' (the shipped student); repeat to compare")
    p.add_argument("--scenes", type=int, default=100, help="unseen scenes (the Table II stream, first N)")
    p.add_argument("--temperature", type=float, action="append", default=None,
                   help="prior temperature (repeat to sweep; default: the node's)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a planner node parameter over its default (e.g. w_progress=30), for every model")
    p.add_argument("--steps", type=int, default=0, help="also roll each scene out for N control periods with an "
                   "ideal joint tracker (offline.rollouts: reached, terminal error) into rollouts.json")
    p.add_argument("--out", default="results/arm_start", help="folder for start.json")

    def run(args: argparse.Namespace) -> int:
        from .config import load_demo_config
        from .offline import rollouts, start_decisions
        from .trials import trial_scenes

        out = Path(args.out)
        scenes = trial_scenes(load_demo_config("small"), args.scenes)
        params = parse_overrides(args.param, "w_progress=30")
        rows = []
        for model in args.model:
            for temperature in args.temperature or [None]:
                r = start_decisions(resolve_model(model, "student", out), scenes, temperature, params)
                rows.append(r)
                print(f"{r['model_id']} (T {r['temperature']}): feasible at the start of {r['feasible_at_start']}/"
                      f"{r['scenes']} scenes, candidate spread {r['candidate_spread_mm_median']:.1f} mm (median), "
                      f"{r['decision_ms_median']:.2f} ms per decision; candidates rejected by "
                      + ", ".join(f"{k} {v:.0%}" for k, v in r["rejected_share"].items()))
        out.mkdir(parents=True, exist_ok=True)
        (out / "start.json").write_text(json.dumps(rows, indent=1) + "\n")
        if args.steps:
            rolled = []
            for model in args.model:
                for temperature in args.temperature or [None]:
                    r = rollouts(resolve_model(model, "student", out), scenes, args.steps, temperature, params)
                    rolled.append(r)
                    print(f"{r['model_id']} (T {temperature}): ideal-tracker rollouts reached {r['reached']}/"
                          f"{r['scenes']}, terminal error {r['terminal_error_mm_median']:.1f} mm (median), min arm "
                          f"clearance {r['min_arm_clearance_mm']:.1f} mm")
            (out / "rollouts.json").write_text(json.dumps(rolled, indent=1) + "\n")
        return 0

    return run
