"""`dnk-train`: train teacher / classifier / IQL critic and evaluate the teacher as a policy.

  dnk-train train-teacher    --task halfcheetah --preset small --out artifacts/halfcheetah [--resume]
  dnk-train train-classifier --task halfcheetah --preset small --out artifacts/halfcheetah
  dnk-train train-iql        --task halfcheetah --preset small --out artifacts/halfcheetah
  dnk-train eval-teacher     --artifacts artifacts/halfcheetah --seeds 0 --episodes 10 --report report.json

Subcommands are registered in this module and in `dnk_training.distill_cli` (gen-pairs,
train-student, export, distill-report); `build_parser` lists both.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .configs import TaskConfig, load_task_config
from .subcommands import Handler, Subcommands, add_set_arg, parse_overrides

COMMANDS = Subcommands()
SET_EXAMPLE = "teacher.train.steps=2000"


def add_task_args(p: argparse.ArgumentParser) -> None:
    """Arguments every subcommand shares: task config, preset, overrides, output dir, threads."""
    p.add_argument("--task", default="halfcheetah", help="task name in dnk_training/config/ or a YAML path")
    p.add_argument("--preset", default="small", help="preset in the task YAML (small | paper)")
    add_set_arg(p, SET_EXAMPLE)
    p.add_argument("--dataset", help="override dataset.path (D4RL-layout HDF5 or Minari id)")
    p.add_argument("--out", default="artifacts/halfcheetah", help="artifact directory (exports + runs/<model>/)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--no-progress", action="store_true", help="hide tqdm bars")


def task_config_from_args(args: argparse.Namespace) -> TaskConfig:
    overrides = parse_overrides(args.set, SET_EXAMPLE)
    if args.dataset:
        overrides["dataset.path"] = args.dataset
    return load_task_config(args.task, args.preset, overrides)


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)


def _train_args(p: argparse.ArgumentParser) -> None:
    add_task_args(p)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in <out>/runs/<model>/checkpoints")


def _load_data(cfg: TaskConfig):
    from .datasets import fit_normalizer, load_dataset, make_windows

    data = load_dataset(cfg.dataset.path, cfg.dataset.source)
    d = cfg.dataset
    windows = make_windows(data, d.horizon, d.discount, d.terminal_penalty, d.drop_short_episodes)
    return data, windows, fit_normalizer(data)


def _export(out: Path, name: str, model, step: int, normalizer=None) -> None:
    path = model.save(out / name, step)
    if normalizer is not None:
        normalizer.save(out / "normalizer.json")
    print(f"wrote {path} (+ {path.with_suffix('.safetensors').name})")


@COMMANDS.add("train-teacher", "train the diffusion teacher (DDPM, temporal U-Net)")
def _train_teacher(p: argparse.ArgumentParser) -> Handler:
    _train_args(p)

    def run(args: argparse.Namespace) -> int:
        from .teacher import train_teacher

        _setup_torch(args)
        cfg = task_config_from_args(args)
        _, windows, norm = _load_data(cfg)
        out = Path(args.out)
        teacher = train_teacher(cfg, windows.x, norm, out / "runs" / "teacher", args.resume, not args.no_progress)
        _export(out, "teacher", teacher, cfg.teacher.train.steps, norm)
        return 0

    return run


@COMMANDS.add("train-classifier", "train the return classifier (guidance and ranking)")
def _train_classifier(p: argparse.ArgumentParser) -> Handler:
    _train_args(p)

    def run(args: argparse.Namespace) -> int:
        from .classifier import train_classifier

        _setup_torch(args)
        cfg = task_config_from_args(args)
        _, windows, norm = _load_data(cfg)
        out = Path(args.out)
        clf = train_classifier(cfg, windows.x, windows.values, norm, out / "runs" / "classifier", args.resume, not args.no_progress)
        _export(out, "classifier", clf, cfg.classifier.train.steps, norm)
        return 0

    return run


@COMMANDS.add("train-iql", "train the IQL critic Q(s, a)")
def _train_iql(p: argparse.ArgumentParser) -> Handler:
    _train_args(p)

    def run(args: argparse.Namespace) -> int:
        from .datasets import load_dataset
        from .iql import train_iql

        _setup_torch(args)
        cfg = task_config_from_args(args)
        data = load_dataset(cfg.dataset.path, cfg.dataset.source)
        out = Path(args.out)
        critic = train_iql(cfg, data, out / "runs" / "iql", args.resume, not args.no_progress)
        _export(out, "iql", critic, cfg.iql.train.steps)
        return 0

    return run


@COMMANDS.add("eval-teacher", "run the teacher as a policy in MuJoCo and measure decision latency")
def _eval_teacher(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--artifacts", default="artifacts/halfcheetah", help="directory holding teacher.json and classifier.json")
    p.add_argument("--episodes", type=int, help="episodes (default: config eval.episodes)")
    p.add_argument("--max-steps", type=int, help="env steps per episode (default: config eval.max_steps = 1000)")
    p.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds; episode e of seed s resets the env with "
                   "seed 1000000 + 1000 s + e, as dnk-eval does (default: config eval.seeds)")
    p.add_argument("--guidance-weight", type=float, help="classifier guidance w_cg (default: config sampling.guidance_weight)")
    p.add_argument("--latency-decisions", type=int, default=20, help="timed single-state decisions at num_candidates (0: skip)")
    p.add_argument("--report", required=True, help="output JSON")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--no-progress", action="store_true", help="hide tqdm bars")

    def run(args: argparse.Namespace) -> int:
        from .classifier import ReturnClassifier
        from .rollout import evaluate_teacher, measure_latency
        from .teacher import Teacher

        _setup_torch(args)
        art = Path(args.artifacts)
        teacher = Teacher.load(art / "teacher.json")
        clf = ReturnClassifier.load(art / "classifier.json")
        cfg = teacher.cfg
        given = {"episodes": args.episodes, "max_steps": args.max_steps, "seeds": args.seeds}
        ev = cfg.eval.model_copy(update={k: v for k, v in given.items() if v is not None})
        sampling = cfg.sampling if args.guidance_weight is None else cfg.sampling.model_copy(update={"guidance_weight": args.guidance_weight})
        report = Path(args.report)
        report.parent.mkdir(parents=True, exist_ok=True)
        result: dict = {"threads": args.threads}
        if args.latency_decisions > 0:
            result["latency"] = measure_latency(teacher, clf, sampling, args.latency_decisions)

        def write(ev_result: dict) -> None:
            report.write_text(json.dumps(dict(result, eval=ev_result), indent=1))

        result["eval"] = evaluate_teacher(teacher, clf, sampling, ev, progress=not args.no_progress, on_partial=write)
        write(result["eval"])
        print(json.dumps({k: v for k, v in result["eval"].items() if k != "episode_returns"}, indent=1))
        return 0

    return run


@COMMANDS.add("datasets", "list the datasets on the search path ($DNK_DATASETS, ./datasets, <workspace>/datasets)")
def _datasets(p: argparse.ArgumentParser) -> Handler:
    p.add_argument("--no-stats", action="store_true", help="names and paths only (do not open the files)")

    def run(args: argparse.Namespace) -> int:
        from .datasets import dataset_search_path, list_datasets, load_d4rl_hdf5, split_episodes

        print("search path: " + " : ".join(str(p) for p in dataset_search_path()))
        files = list_datasets()
        if not files:
            print("no .hdf5 dataset found; set DNK_DATASETS to the folder holding them")
            return 1
        for f in files:
            if args.no_stats:
                print(f"{f.name}  {f}")
                continue
            data = load_d4rl_hdf5(f)
            eps = split_episodes(data)
            rets = [float(data.rewards[a:b].sum()) for a, b in eps]
            print(f"{f.name}  rows {len(data)}  episodes {len(eps)}  return mean {sum(rets) / len(rets):.1f} "
                  f"[{min(rets):.1f}, {max(rets):.1f}]  obs {data.obs_dim}  act {data.act_dim}  {f}")
        return 0

    return run


def build_parser() -> argparse.ArgumentParser:
    from dnk_training import distill_cli

    parser = argparse.ArgumentParser(prog="dnk-train", description="DNK offline training pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, s in {**COMMANDS, **distill_cli.COMMANDS}.items():
        sp = sub.add_parser(name, help=s.help, description=s.help)
        sp.set_defaults(handler=s.configure(sp))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (ValueError, FileNotFoundError) as e:
        print(f"dnk-train {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
