"""`dnk-eval`: D4RL-style MuJoCo evaluation through the planner core, merging, Table I report.

  dnk-eval d4rl --method "DNK (IQL)" --student students/fdk.onnx --selector critic \
      --selector-model selectors/critic.onnx --preset small --out results/dnk_iql.json [--resume]
  dnk-eval d4rl --method Teacher --teacher artifacts/halfcheetah --out results/teacher.json
  dnk-eval merge results/*.json --out results/all.json
  dnk-eval report results/*.json --out results/table1/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dnk_training.eval.results import ResultsFile, load_results, merge_files, merge_runs, save_results
from dnk_training.subcommands import add_set_arg, parse_overrides


def _add_d4rl(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("d4rl", help="closed-loop evaluation of one policy in a gymnasium MuJoCo env")
    p.add_argument("--method", required=True, help="Table I row label, e.g. 'DNK (IQL)', 'KDM', 'Teacher'")
    p.add_argument("--preset", default="small", help="evaluation budget in dnk_training/config/eval.yaml (small: 3 seeds x 5 episodes x 1000 steps | paper | smoke)")
    add_set_arg(p, "episodes=3")
    p.add_argument("--env", help="gymnasium env id, HalfCheetah-v5 or Walker2d-v5 (short for --set env_id=...)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--student", help="student .onnx (manifest .json beside it), run through the planner core")
    src.add_argument("--teacher", help="teacher artifact directory holding teacher.json and classifier.json (dnk-train)")
    p.add_argument("--selector", choices=["critic", "classifier"], default="critic",
                   help="candidate selector for --student (IQL critic or return classifier)")
    p.add_argument("--selector-model", help="selector .onnx for --student (selectors/critic.onnx or classifier.onnx)")
    p.add_argument("--training-seed", type=int,
                   help="training seed of --student (students/<model>-s<S>.onnx); the report pools a method's "
                        "training seeds into one Table I row")
    p.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds (short for --set seeds=[...])")
    p.add_argument("--episodes", type=int, help="episodes per seed (short for --set episodes=N)")
    p.add_argument("--max-steps", type=int, help="control steps per episode, D4RL: 1000 (short for --set max_steps=N)")
    p.add_argument("--num-candidates", type=int, default=64, help="candidates per decision (paper: 64)")
    p.add_argument("--temperature", type=float, default=0.5, help="prior noise temperature (paper: 0.5)")
    p.add_argument("--guidance-weight", type=float,
                   help="teacher classifier-guidance weight w_cg (default: the teacher config's sampling value)")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"],
                   help="onnxruntime execution provider")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime / torch intra-op threads")
    p.add_argument("--candidate-states", type=int, help="states whose candidates are kept for Fig. 4")
    p.add_argument("--candidate-dataset", help="D4RL-layout HDF5: take the Fig. 4 states from its observations")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm bar")
    p.add_argument("--resume", action="store_true",
                   help="keep this method's finished seeds in --out and run only the missing ones")
    p.add_argument("--out", required=True, help="results JSON (other methods' runs in it are kept)")


def _policy(args: argparse.Namespace):
    from dnk_training.eval.bridge import PlannerPolicy, TeacherPolicy
    if args.student:
        if not args.selector_model:
            raise ValueError("--selector-model is required with --student: pass selectors/critic.onnx "
                             "(--selector critic) or selectors/classifier.onnx (--selector classifier)")
        return PlannerPolicy(args.student, args.selector, args.selector_model, args.num_candidates,
                             args.temperature, args.provider, args.threads)
    return TeacherPolicy(args.teacher, num_candidates=args.num_candidates, temperature=args.temperature,
                         guidance_weight=args.guidance_weight, threads=args.threads)


def cmd_d4rl(args: argparse.Namespace) -> int:
    from dnk_training.configs import load_eval_config
    from dnk_training.eval.bridge import evaluate
    overrides = parse_overrides(args.set, "episodes=3")
    overrides.update({k: v for k, v in {
        "env_id": args.env, "seeds": args.seeds, "episodes": args.episodes, "max_steps": args.max_steps,
        "candidate_states": args.candidate_states, "candidate_dataset": args.candidate_dataset}.items() if v is not None})
    cfg = load_eval_config(args.preset, {**overrides, "progress": not args.no_progress})
    out = Path(args.out)
    existing = load_results(out) if out.exists() else ResultsFile()
    key = (cfg.env_id, args.method, args.training_seed)
    others = [r for r in existing.runs if r.key != key]
    previous = next((r for r in existing.runs if r.key == key), None)
    if previous is not None and not args.resume:
        raise ValueError(f"{out} already holds {args.method!r} on {cfg.env_id} (training seed {args.training_seed}); "
                         "pass --resume to continue it (finished seeds are kept) or write to another --out")
    policy = _policy(args)

    def checkpoint(run) -> None:
        save_results(ResultsFile(runs=others + [run]), out)

    run = evaluate(policy, args.method, cfg, resume=previous, checkpoint=checkpoint, training_seed=args.training_seed)
    checkpoint(run)
    from dnk_training.eval.report import run_metrics
    m = run_metrics(run)
    print(f"{args.method} on {cfg.env_id}: return {m.return_mean:.4f} ± {m.return_std:.4f}, worst {m.worst_case:.4f}, "
          f"intra-run std {m.intra_run_std:.4f}, latency {m.latency_mean_ms:.2f} ± {m.latency_std_ms:.2f} ms "
          f"(p95 {m.latency_p95_ms:.2f}), {m.episode_steps_mean:.0f} steps per episode "
          f"({m.terminated_episodes}/{m.num_episodes} ended early) -> {out}")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    save_results(merge_files(args.files), args.out)
    print(f"merged {len(args.files)} file(s) -> {args.out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from dnk_training.eval.report import write_report
    paths = write_report(merge_runs(r for f in args.files for r in load_results(f).runs), args.out, args.reference)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnk-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_d4rl(sub)
    m = sub.add_parser("merge", help="merge results files (disjoint seeds per method)")
    m.add_argument("files", nargs="+", help="results JSON files")
    m.add_argument("--out", required=True, help="merged results JSON")
    r = sub.add_parser("report", help="Table I (Markdown/JSON), Pareto plot, candidate PCA")
    r.add_argument("files", nargs="+", help="results JSON files (merged on the fly)")
    r.add_argument("--reference", default=None,
                   help="method every other row is compared with in significance.md (default 'DNK (IQL)')")
    r.add_argument("--out", required=True, help="output directory, e.g. results/table1/ (reports/ is regenerated "
                   "only by the report scripts)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"d4rl": cmd_d4rl, "merge": cmd_merge, "report": cmd_report}
    try:
        return handlers[args.command](args)
    except ValueError as err:  # contract and input errors carry their fix; no traceback
        print(f"dnk-eval {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
