"""`dnk-train`: the offline pipeline's commands, one CLI shape for all of them.

  dnk-train datasets
  dnk-train train-teacher    --task halfcheetah --preset small --artifacts artifacts/halfcheetah [--resume]
  dnk-train train-classifier --task halfcheetah --preset small --artifacts artifacts/halfcheetah
  dnk-train train-iql        --task halfcheetah --preset small --artifacts artifacts/halfcheetah
  dnk-train eval-teacher     --artifacts artifacts/halfcheetah --preset small --out results/teacher_eval.json

Every subcommand takes --artifacts, --preset, --set key=value (checked against the config;
unknown keys are refused with the valid names), --threads and --no-progress, and --resume where
continuing makes sense. Subcommands are registered in this module and in
`dnk_training.distill_cli` (gen-pairs, train-student, export, distill-report); `build_parser`
lists both.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .configs import TaskConfig, load_eval_config, load_task_config
from .subcommands import Handler, Subcommands, add_common_args, parse_overrides

COMMANDS = Subcommands()
SET_EXAMPLE = "teacher.train.steps=2000"
EVAL_SET_EXAMPLE = "episodes=3"


def add_task_args(p: argparse.ArgumentParser) -> None:
    """The common flags with the task config (config/<task>.yaml) and its dataset."""
    add_common_args(p, config="dnk_training/config/<task>.yaml", set_example=SET_EXAMPLE,
                    resume="continue from the newest checkpoint in <artifacts>/runs/<model>/checkpoints")
    p.add_argument("--task", default="halfcheetah", help="task name in dnk_training/config/ or a YAML path")
    p.add_argument("--dataset", help="dataset file name on the search path, or a path (short for --set dataset.path=...)")


def task_config_from_args(args: argparse.Namespace) -> TaskConfig:
    overrides = parse_overrides(args.set, SET_EXAMPLE)
    if args.dataset:
        overrides["dataset.path"] = args.dataset
    return load_task_config(args.task, args.preset, overrides)


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)


def _trainer(name: str) -> Handler:
    """Handler of train-<name>: load the data, train (resumable), save <artifacts>/<name>.json."""

    def run(args: argparse.Namespace) -> int:
        from .datasets import fit_normalizer, load_dataset, make_windows

        _setup_torch(args)
        cfg = task_config_from_args(args)
        art = Path(args.artifacts)
        run_dir, progress = art / "runs" / name, not args.no_progress
        if cfg.task == "arm":
            if name != "teacher":
                raise ValueError(f"train-{name} is a locomotion selector; the arm is scored geometrically by the planner")
            from .arm.windows import training_windows
            from .teacher import train_teacher

            windows, norm = training_windows(cfg)
            model, steps = train_teacher(cfg, windows, norm, run_dir, args.resume, progress), cfg.teacher.train.steps
            path = model.save(art / name, steps)
            norm.save(art / "normalizer.json")
            print(f"wrote {path} (+ {path.with_suffix('.safetensors').name}); scalars: {run_dir / 'scalars.csv'}")
            return 0
        data = load_dataset(cfg.dataset.path, cfg.dataset.source)
        if name == "iql":
            from .iql import train_iql

            model, steps, norm = train_iql(cfg, data, run_dir, args.resume, progress), cfg.iql.train.steps, None
        else:
            d = cfg.dataset
            windows = make_windows(data, d.horizon, d.discount, d.terminal_penalty, d.drop_short_episodes)
            norm = fit_normalizer(data)
            if name == "teacher":
                from .teacher import train_teacher

                model, steps = train_teacher(cfg, windows.x, norm, run_dir, args.resume, progress), cfg.teacher.train.steps
            else:
                from .classifier import train_classifier

                model = train_classifier(cfg, windows.x, windows.values, norm, run_dir, args.resume, progress)
                steps = cfg.classifier.train.steps
        path = model.save(art / name, steps)
        if norm is not None:
            norm.save(art / "normalizer.json")
        print(f"wrote {path} (+ {path.with_suffix('.safetensors').name}); scalars: {run_dir / 'scalars.csv'}")
        return 0

    return run


def _train_command(name: str):
    def configure(p: argparse.ArgumentParser) -> Handler:
        add_task_args(p)
        return _trainer(name)

    return configure


for _name, _help in (("teacher", "train the diffusion teacher (DDPM, temporal U-Net)"),
                     ("classifier", "train the return classifier (guidance and ranking)"),
                     ("iql", "train the IQL critic Q(s, a)")):
    COMMANDS.add(f"train-{_name}", _help)(_train_command(_name))


@COMMANDS.add("eval-teacher", "run the teacher as a policy in MuJoCo (episodes batched) and measure decision latency")
def _eval_teacher(p: argparse.ArgumentParser) -> Handler:
    add_common_args(p, config="dnk_training/config/eval.yaml", set_example=EVAL_SET_EXAMPLE)
    p.add_argument("--episodes", type=int, help="episodes per seed (short for --set episodes=N)")
    p.add_argument("--max-steps", type=int, help="env steps per episode (short for --set max_steps=N)")
    p.add_argument("--seeds", type=int, nargs="+", help="evaluation seeds; episode e of seed s resets the env with "
                   "seed 1000000 + 1000 s + e, as dnk-eval does (short for --set seeds=[...])")
    p.add_argument("--guidance-weight", type=float, help="classifier guidance w_cg (default: the teacher's sampling config)")
    p.add_argument("--latency-decisions", type=int, default=20, help="timed single-state decisions at num_candidates (0: skip)")
    p.add_argument("--out", required=True, help="output JSON (rewritten with partial results while it runs)")

    def run(args: argparse.Namespace) -> int:
        from .classifier import ReturnClassifier
        from .rollout import evaluate_teacher, measure_latency
        from .teacher import Teacher

        _setup_torch(args)
        art = Path(args.artifacts)
        teacher = Teacher.load(art / "teacher.json")
        clf = ReturnClassifier.load(art / "classifier.json")
        cfg = teacher.cfg
        overrides = parse_overrides(args.set, EVAL_SET_EXAMPLE)
        overrides.update({k: v for k, v in {"episodes": args.episodes, "max_steps": args.max_steps,
                                            "seeds": args.seeds}.items() if v is not None})
        if cfg.env_id is None:
            raise ValueError(f"{art / 'teacher.json'}: task {cfg.name!r} has no env_id; eval-teacher runs locomotion tasks")
        ev = load_eval_config(args.preset, {"env_id": cfg.env_id, **overrides})
        sampling = cfg.sampling if args.guidance_weight is None else cfg.sampling.model_copy(update={"guidance_weight": args.guidance_weight})
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        result: dict = {"threads": args.threads}
        if args.latency_decisions > 0:
            result["latency"] = measure_latency(teacher, clf, sampling, args.latency_decisions)

        def write(ev_result: dict) -> None:
            out.write_text(json.dumps(dict(result, eval=ev_result), indent=1))

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
    from dnk_training.arm import cli as arm_cli

    commands: dict = {}
    for group in (COMMANDS, distill_cli.COMMANDS, arm_cli.COMMANDS):
        clash = set(commands) & set(group)
        if clash:
            raise ValueError(f"dnk-train subcommand(s) {sorted(clash)} registered twice; pick other names")
        commands.update(group)
    parser = argparse.ArgumentParser(prog="dnk-train", description="DNK offline training pipeline")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, s in commands.items():
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
