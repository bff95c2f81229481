"""Distillation subcommands of dnk-train (listed by dnk_training.cli):

    dnk-train gen-pairs --artifacts artifacts/halfcheetah --split train
    dnk-train train-student --model fdk --artifacts artifacts/halfcheetah [--resume]
    dnk-train export --artifacts artifacts/halfcheetah --models fdk kdm kdmf cd ct --selectors
    dnk-train distill-report --artifacts artifacts/halfcheetah --out results/distill

Layout, horizon, normalizer and the DDPM schedule always come from the trained teacher, so
students, pairs and the teacher cannot disagree. Scale and student settings come from
config/distill.yaml (``small`` / ``paper`` presets only change scale) and ``--set key=value``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from dnk_training.checkpoints import CheckpointManager, load_checkpoint, read_meta
from dnk_training.configs import LayoutConfig
from dnk_training.datasets import load_dataset, make_windows
from dnk_training.diffusion import Schedule
from dnk_training.losses import LossConfig
from dnk_training.pairs import INDEX as PAIRS_INDEX
from dnk_training.pairs import PairsConfig, generate_pairs, load_pairs, quality_weights
from dnk_training.students import ConsistencyStudent, FDKStudent, KDMFStudent, KDMStudent, Student, ddim_step
from dnk_training.students.common import PairTensors, StudentConfig, make_state, make_step_fn
from dnk_training.students.config import MODELS, STUDENT_CONFIGS, DistillConfig, ModelName, load_distill_config
from dnk_training.subcommands import Subcommands, add_common_args, parse_overrides
from dnk_training.trainer import run_training

COMMANDS = Subcommands()
SET_EXAMPLE = "fdk.rank=64"


class Paths:
    """Where each artifact lives under artifacts/<task>/ (B's teacher files + this part's outputs)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.root = Path(args.artifacts)
        self.teacher = Path(args.teacher) if args.teacher else self.root / "teacher.json"
        self.classifier = Path(args.classifier) if args.classifier else self.root / "classifier.json"
        self.iql = Path(args.iql) if args.iql else self.root / "iql.json"
        self.pairs = self.root / "pairs"
        self.runs = self.root / "runs"
        self.students = self.root / "students"
        self.selectors = self.root / "selectors"

    def run(self, model: str, train_seed: int = 0) -> Path:
        return self.runs / run_name(model, train_seed)


def run_name(model: str, train_seed: int = 0) -> str:
    """File stem of a student's run and export: 'kdm' for training seed 0, 'kdm-s2' for seed 2."""
    return model if train_seed == 0 else f"{model}-s{train_seed}"


def _load_teacher(paths: Paths):
    """The teacher and its return classifier (None for the arm: it is scored geometrically)."""
    from dnk_training.classifier import ReturnClassifier
    from dnk_training.teacher import Teacher

    if not paths.teacher.is_file():
        raise FileNotFoundError(f"{paths.teacher} not found; train the teacher first (dnk-train train-teacher)")
    teacher = Teacher.load(paths.teacher)
    if teacher.cfg.task == "arm":
        return teacher, None
    if not paths.classifier.is_file():
        raise FileNotFoundError(f"{paths.classifier} not found; train the classifier first (dnk-train train-classifier)")
    return teacher, ReturnClassifier.load(paths.classifier)


def _abar(teacher_cfg) -> torch.Tensor:
    """[K+1] cumulative alphas with abar[0] = 1 from the teacher's own schedule."""
    d = teacher_cfg.teacher.diffusion
    sched = Schedule(d.steps, d.beta_schedule)
    return torch.cat([torch.ones(1), sched.sqrt_ac.double().pow(2).float()])


def build_student(
    model: ModelName, layout: LayoutConfig, horizon: int, cfg: StudentConfig, abar: torch.Tensor, teacher_step=None
) -> Student:
    """Student of the given kind from its own config (`DistillConfig.student_config(model)`)."""
    if model == "fdk":
        return FDKStudent(layout, horizon, cfg)
    if model == "kdm":
        return KDMStudent(layout, horizon, cfg)
    if model == "kdmf":
        return KDMFStudent(layout, horizon, cfg)
    if model in ("cd", "ct"):
        return ConsistencyStudent(layout, horizon, abar, cfg, mode=model, teacher_step=teacher_step)
    raise ValueError(f"--model {model!r} unknown; choose one of {MODELS}")


def trainable_parameters(model: torch.nn.Module) -> int:
    """What a student learns (EMA copies and buffers excluded): the count matched across students."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def student_config_for(model: ModelName, dcfg: DistillConfig, layout: LayoutConfig, horizon: int,
                       abar: torch.Tensor) -> StudentConfig:
    """The model's config; with match_params its MLP width is the one whose trainable-parameter count
    is nearest FDK's at student.hidden (counts grow with the width, so a bisection finds it)."""
    cfg = dcfg.student_config(model)
    if not dcfg.match_params or model == "fdk":
        return cfg
    target = trainable_parameters(build_student("fdk", layout, horizon, dcfg.student_config("fdk"), abar))

    def count(hidden: int) -> int:
        return trainable_parameters(build_student(model, layout, horizon, cfg.model_copy(update={"hidden": hidden}), abar))

    lo, hi = 8, 8192
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) <= target else (lo, mid)
    best = min((lo, hi), key=lambda h: abs(count(h) - target))
    return cfg.model_copy(update={"hidden": best})


def distill_config_from_args(args: argparse.Namespace) -> DistillConfig:
    overrides = parse_overrides(args.set, SET_EXAMPLE)
    if getattr(args, "steps", None):
        overrides["train.steps"] = args.steps
    if getattr(args, "train_seed", None) is not None:
        overrides["train.seed"] = args.train_seed
    return load_distill_config(args.preset, overrides)


def teacher_ode_step(teacher, classifier, guidance_weight: float):
    """The teacher's deterministic probability-flow step (DDIM on its grid), guided like its sampler."""
    def x0_fn(x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        x0 = teacher.predict_x0(x, n - 1, guidance_weight, classifier)  # n - 1: teacher step index
        return teacher.conditioning.reimpose(x0, x).detach()

    return ddim_step(x0_fn, _abar(teacher.cfg))


def _split_windows(teacher, heldout_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalized dataset windows of the training episodes and of the last heldout_frac episodes
    (arm: scenes, split as the teacher was trained)."""
    ds = teacher.cfg.dataset
    if teacher.cfg.task == "arm":
        from dnk_training.arm.windows import split_windows

        return tuple(teacher.normalizer.normalize(w) for w in split_windows(teacher.cfg))
    data = load_dataset(ds.path, ds.source)
    w = make_windows(data, ds.horizon, ds.discount, ds.terminal_penalty, ds.drop_short_episodes)
    n_ep = int(w.episode_of.max()) + 1
    cut = int(round(n_ep * (1 - heldout_frac)))
    x = teacher.normalizer.normalize(w.x)
    return x[w.episode_of < cut], x[w.episode_of >= cut]


def cmd_gen_pairs(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    paths = Paths(args)
    dcfg = distill_config_from_args(args)
    teacher, classifier = _load_teacher(paths)
    train_w, held_w = _split_windows(teacher, dcfg.heldout_frac)
    windows = train_w if args.split == "train" else held_w
    n = args.num_pairs or (dcfg.num_pairs if args.split == "train" else dcfg.heldout_pairs)
    cfg = PairsConfig(num_pairs=n, chunk_size=dcfg.chunk_size, batch_size=dcfg.teacher_batch,
                      seed=args.seed + (0 if args.split == "train" else 1_000_003), sampler=dcfg.sampler,
                      priors_per_context=dcfg.priors_per_context if args.split == "train" else 1)
    gw = teacher.cfg.sampling.guidance_weight

    def teach(prior: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return teacher.sample(prior, guidance_weight=gw, generator=gen, classifier=classifier, sampler=cfg.sampler)

    def score(x0: torch.Tensor) -> torch.Tensor:
        if classifier is None:  # the arm: every pair weighs the same (no return model)
            return torch.zeros(x0.shape[0])
        with torch.no_grad():
            return classifier(x0, 0)

    meta = {"teacher": str(paths.teacher), "teacher_step": int(read_meta(paths.teacher)["step"]), "split": args.split,
            "guidance_weight": gw, "heldout_frac": dcfg.heldout_frac, "windows": int(windows.shape[0]),
            "sampler": cfg.sampler}
    if classifier is not None:
        meta.update(classifier=str(paths.classifier), classifier_step=int(read_meta(paths.classifier)["step"]))
    out = paths.pairs / args.split
    if (out / PAIRS_INDEX).exists() and not args.resume:
        raise ValueError(f"{out} already holds pairs; pass --resume to add to them (chunks are seeded, so the result "
                         "equals one uninterrupted run) or remove the folder to start over")
    deadline = time.monotonic() + args.max_minutes * 60 if args.max_minutes else None
    t0 = time.monotonic()
    while True:
        index = generate_pairs(out, windows, teacher.conditioning.mask.numpy(), teach, score, cfg, meta, max_chunks=1,
                               progress=not args.no_progress)
        if index["total"] >= n or (deadline is not None and time.monotonic() > deadline):
            break
    print(json.dumps({"split": args.split, "pairs": index["total"], "target": n, "wall_s": round(time.monotonic() - t0, 1)}))
    return 0


def _pair_tensors(pairs_dir: Path, loss: LossConfig) -> PairTensors:
    p = load_pairs(pairs_dir)
    return PairTensors(
        prior=torch.as_tensor(p["prior"]),
        target=torch.as_tensor(p["target"]),
        weight=torch.as_tensor(quality_weights(p["q"], loss.w_min, loss.w_max)),
        window=torch.as_tensor(p["window"]),
    )


def _student_meta(model: Student, name: str, preset: str, dcfg: DistillConfig, teacher, pairs_dir: Path, n_pairs: int,
                  paths: Paths) -> dict:
    return {
        "teacher": f"{paths.teacher} (step {read_meta(paths.teacher)['step']})",
        "kind": "student", "model": name, "preset": preset, "student_config": model.cfg.model_dump(mode="json"),
        "trainable_parameters": trainable_parameters(model), "train_seed": dcfg.train.seed,
        "distill_config": dcfg.model_dump(mode="json"),
        "task_config": teacher.cfg.model_dump(), "normalizer": teacher.normalizer.to_dict(),
        "pairs": str(pairs_dir), "num_pairs": n_pairs,
    }


def cmd_train_student(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    paths = Paths(args)
    dcfg = distill_config_from_args(args)
    teacher, classifier = _load_teacher(paths)
    step = teacher_ode_step(teacher, classifier, teacher.cfg.sampling.guidance_weight) if args.model == "cd" else None
    cfg = student_config_for(args.model, dcfg, teacher.cfg.layout, teacher.horizon, _abar(teacher.cfg))
    torch.manual_seed(dcfg.train.seed)  # the training seed fixes the initialization (same for every student)
    model = build_student(args.model, teacher.cfg.layout, teacher.horizon, cfg, _abar(teacher.cfg), step)
    data = _pair_tensors(paths.pairs / "train", model.cfg.loss)
    meta = _student_meta(model, args.model, args.preset, dcfg, teacher, paths.pairs / "train", len(data), paths)
    state = make_state(model, dcfg.train, meta)
    t0 = time.monotonic()
    done = run_training(args.model, state, make_step_fn(model, data, dcfg.train, state), dcfg.train,
                        paths.run(args.model, dcfg.train.seed), resume=args.resume, progress=not args.no_progress)
    print(json.dumps({"model": args.model, "train_seed": dcfg.train.seed, "hidden": cfg.hidden,
                      "trainable_parameters": meta["trainable_parameters"], "steps": done, "pairs": len(data),
                      "wall_s": round(time.monotonic() - t0, 1)}))
    return 0


def load_student(run_dir: Path) -> tuple[Student, dict]:
    """Rebuild a student from its latest checkpoint, with the config stored in it (never today's defaults)."""
    from dnk_training.configs import TaskConfig

    latest = CheckpointManager(run_dir / "checkpoints").latest()
    if latest is None:
        raise FileNotFoundError(f"{run_dir}/checkpoints holds no checkpoint; run dnk-train train-student first")
    meta = read_meta(latest)
    task = TaskConfig.model_validate(meta["task_config"])
    if "student_config" not in meta:
        raise ValueError(f"{latest} stores no student_config (written before configs travelled with "
                         "checkpoints); retrain it with dnk-train train-student")
    cfg = STUDENT_CONFIGS[meta["model"]].model_validate(meta["student_config"])
    model = build_student(meta["model"], task.layout, task.dataset.horizon, cfg, _abar(task))
    load_checkpoint(latest, {"student": model})
    return model.eval(), meta


def cmd_export(args: argparse.Namespace) -> int:
    """All-or-nothing: every requested model is loaded before anything is written, each is exported
    (and parity-checked) into a staging folder, and only when all passed do they replace the old files."""
    import shutil
    import tempfile

    from dnk_training.configs import TaskConfig
    from dnk_training.export import ExportParityError, export_classifier, export_critic, export_student
    from dnk_training.normalizer import Normalizer

    torch.set_num_threads(args.threads)
    paths = Paths(args)
    hashes = provenance_hashes(paths)
    seed = distill_config_from_args(args).train.seed
    jobs = []  # (name, destination folder, export(staged .onnx path) -> max abs error)
    for name in args.models:
        stem = run_name(name, seed)
        model, meta = load_student(paths.run(name, seed))
        task = TaskConfig.model_validate(meta["task_config"])
        norm = Normalizer.from_dict(meta["normalizer"])
        prov = {"dataset": task.dataset.path, "teacher": meta["teacher"], "method": name,
                "config": json.dumps(meta["distill_config"]), "pairs": f"{meta['num_pairs']} from {meta['pairs']}",
                "steps": str(meta["step"]), "preset": meta["preset"], **hashes,
                "config_sha256": _sha256_text(json.dumps(meta["distill_config"], sort_keys=True))}
        jobs.append((stem, paths.students, lambda out, m=model, t=task, n=norm, pv=prov, nm=stem: export_student(
            m, out, f"{t.name}-{nm}", t.layout, t.dataset.horizon, n, t.task, pv, row_period_s=t.row_period_s,
            prior_temperature=t.prior_temperature)[1]))
    if args.teacher_model:
        from dnk_training.export import export_teacher
        from dnk_training.teacher import Teacher

        teacher = Teacher.load(paths.teacher)
        prov = {"dataset": teacher.cfg.dataset.path, "teacher": f"{paths.teacher} (step {read_meta(paths.teacher)['step']})",
                **hashes}
        jobs.append(("teacher", paths.students, lambda out: export_teacher(
            teacher, out, f"{teacher.cfg.name}-teacher", prov)[1]))
    if args.selectors:
        from dnk_training.classifier import ReturnClassifier
        from dnk_training.iql import IQLCritic

        for p in (paths.classifier, paths.iql):
            if not p.is_file():
                raise FileNotFoundError(f"--selectors: {p} not found; train it first (dnk-train train-classifier / train-iql)")
        clf, critic = ReturnClassifier.load(paths.classifier), IQLCritic.load(paths.iql)
        task = clf.cfg
        prov = {"dataset": task.dataset.path, "teacher": f"{paths.teacher} (step {read_meta(paths.teacher)['step']})",
                "method": "return classifier at t=0"}
        clf_prov = {**prov, "source": f"{paths.classifier} (step {read_meta(paths.classifier)['step']})"}
        critic_prov = {**prov, "method": "IQL min(Q1, Q2)", "source": f"{paths.iql} (step {read_meta(paths.iql)['step']})"}
        jobs.append(("classifier", paths.selectors, lambda out: export_classifier(
            clf, out, f"{task.name}-classifier", task.layout, task.dataset.horizon, clf.normalizer, task.task, clf_prov)[1]))
        jobs.append(("critic", paths.selectors, lambda out: export_critic(
            critic, out, f"{task.name}-iql-critic", task.layout, task.dataset.horizon, clf.normalizer, task.task,
            critic_prov)[1]))
    paths.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-staging-", dir=paths.root))  # one per process: exports may run side by side
    try:
        try:
            results = {name: export(staging / f"{name}.onnx") for name, _, export in jobs}
        except ExportParityError as err:
            raise ValueError(f"{err}; nothing exported (every model is written only when all pass)") from err
        for name, dest, _ in jobs:
            dest.mkdir(parents=True, exist_ok=True)
            for suffix in (".onnx", ".json", ".parity.npz"):
                os.replace(staging / f"{name}{suffix}", dest / f"{name}{suffix}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    print(json.dumps({"max_abs_error": results, "students": str(paths.students), "selectors": str(paths.selectors)}))
    return 0


def _sha256_text(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def provenance_hashes(paths: Paths) -> dict[str, str]:
    """sha256 of what a model came from: the dataset (a demo folder's index), the teacher's weights
    and its task config, so a manifest names the exact inputs that reproduce it."""
    from dnk_planner.core.manifest import sha256_file
    from dnk_training.datasets import find_dataset

    meta = read_meta(paths.teacher)
    data = find_dataset(meta["task_config"]["dataset"]["path"])
    return {"dataset_sha256": sha256_file(data / "index.json" if data.is_dir() else data),
            "teacher_sha256": sha256_file(paths.teacher.with_suffix(".safetensors")),
            "teacher_config_sha256": _sha256_text(json.dumps(meta["task_config"], sort_keys=True))}


def fidelity(pred: np.ndarray, target: np.ndarray, free: np.ndarray, act: slice, act_row: int) -> dict[str, float]:
    """Teacher-fidelity errors in normalized units: MSE over the free (non-fixed) entries, first-action MSE."""
    err = (pred - target) ** 2
    return {"traj_mse": float(err[:, free].mean()), "first_action_mse": float(err[:, act_row, act].mean())}


@torch.no_grad()
def latent_fit(student: Student, prior: np.ndarray, target: np.ndarray) -> dict[str, float] | None:
    """Held-out L_lat of a Koopman student beside the scale of its target latents: L_lat alone cannot be
    compared across students, since nothing in the losses fixes the latent scale. None for students
    without a latent transition (CD, CT)."""
    if not hasattr(student, "latents"):
        return None
    z0_hat, z0 = student.latents(torch.as_tensor(prior), torch.as_tensor(target))
    lat = float((z0_hat - z0).pow(2).mean())
    var = float(z0.var(0).mean())
    return {"lat_mse": lat, "target_latent_mean_square": float(z0.pow(2).mean()), "target_latent_var": var,
            "lat_relative": lat / max(var, 1e-12)}


def prior_sensitivity(pred: np.ndarray, target: np.ndarray, free: np.ndarray) -> dict[str, float]:
    """How much of the teacher's dependence on the prior noise a student reproduces.

    pred, target: [C, P, H, D], P priors of each of C contexts. The part of a target that moves
    with the prior (target minus its context mean) is what makes a decision's candidates differ; a
    student that regresses to the context mean has the same trajectory MSE budget but gives the
    selector one path. prior_r2 = 1 - E||dev_pred - dev_target||^2 / E||dev_target||^2 over free
    entries (1: the teacher's variation reproduced, 0: none, < 0: own variation)."""
    dev_t = (target - target.mean(axis=1, keepdims=True))[..., free]
    dev_p = (pred - pred.mean(axis=1, keepdims=True))[..., free]
    return {"between_prior_var": float(dev_p.var(axis=1, ddof=1).mean()),
            "prior_r2": float(1.0 - ((dev_p - dev_t) ** 2).sum() / (dev_t ** 2).sum())}


def _prior_sweep(teacher, classifier, held_prior: np.ndarray, contexts: int, priors: int, temperature: float):
    """priors conditioned priors for each of the first `contexts` held-out contexts and the
    teacher's deterministic (DDIM) targets: [C, P, H, D] each."""
    cond = teacher.conditioning.cond_from(torch.as_tensor(held_prior[:contexts]))
    cond = {k: v.repeat_interleave(priors, dim=0) for k, v in cond.items()}
    prior = teacher.make_prior(cond, temperature, torch.Generator().manual_seed(0))
    gw = teacher.cfg.sampling.guidance_weight
    target = torch.cat([teacher.sample(prior[i:i + 256], guidance_weight=gw, classifier=classifier, sampler="ddim")
                        for i in range(0, len(prior), 256)])
    shape = (contexts, priors, *prior.shape[1:])
    return prior.numpy(), target.numpy().reshape(shape)


def _trajectories(onnx, prior: np.ndarray, batch: int = 1024) -> np.ndarray:
    """The student's trajectories for every prior, in batches the session handles in one call."""
    return np.concatenate([onnx.run(prior=prior[i:i + batch])["trajectory"] for i in range(0, len(prior), batch)])


def _timed(fn, runs: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    return {"median_ms": float(np.median(ts)), "p95_ms": float(np.percentile(ts, 95)), "runs": runs}


def cmd_report(args: argparse.Namespace) -> int:
    """Fidelity on held-out pairs and latency, measured on the exported ONNX files the planner loads."""
    from dnk_planner.core.manifest import load_model
    from dnk_training.logging_utils import read_scalars

    torch.set_num_threads(args.threads)
    paths = Paths(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher, classifier = _load_teacher(paths)
    seed = distill_config_from_args(args).train.seed
    held = load_pairs(paths.pairs / "heldout")
    prior, target = held["prior"], held["target"]
    free = ~teacher.conditioning.mask.numpy()
    act = teacher.cfg.layout.column_slice(teacher.cfg.layout.action.column)
    row = teacher.cfg.layout.action.row
    batch = prior[:64]
    report: dict = {
        "heldout_pairs": int(prior.shape[0]),
        "target_variance_free": float(target[:, free].var()),
        "target_variance_first_action": float(target[:, row, act].var()),
        "threads": args.threads,
        "train_seed": seed,
        "students": {},
    }
    sweep_prior, sweep_target = _prior_sweep(teacher, classifier, prior, args.sweep_contexts, args.sweep_priors,
                                             args.sweep_temperature)
    report["prior_sweep"] = {"contexts": args.sweep_contexts, "priors": args.sweep_priors,
                             "temperature": args.sweep_temperature, "sampler": "ddim",
                             "teacher_between_prior_var": prior_sensitivity(
                                 sweep_target, sweep_target, free)["between_prior_var"]}
    for model_name in args.models:
        name = run_name(model_name, seed)
        onnx = load_model(paths.students / f"{name}.onnx", provider="cpu", threads=args.threads)
        entry = fidelity(_trajectories(onnx, prior), target, free, act, row)
        sweep = _trajectories(onnx, sweep_prior).reshape(sweep_target.shape)
        entry["prior_sweep"] = prior_sensitivity(sweep, sweep_target, free)
        entry["latency_b64"] = _timed(lambda: onnx.run(prior=batch), args.latency_runs, 20)
        student, meta = load_student(paths.run(model_name, seed))
        entry["parameters"] = trainable_parameters(student)
        entry["latent"] = latent_fit(student, prior, target)
        entry["hidden"] = student.cfg.hidden
        entry["train_steps"] = int(meta["step"])
        entry["train_pairs"] = int(meta["num_pairs"])
        scal = read_scalars(paths.run(model_name, seed) / "scalars.csv")
        entry["final_train_loss"] = scal[f"{model_name}/loss"][1][-1]
        report["students"][model_name] = entry
        print(name, json.dumps(entry))
    gw = teacher.cfg.sampling.guidance_weight
    pt = torch.as_tensor(batch)
    gen = torch.Generator().manual_seed(0)
    report["teacher_latency_b64"] = _timed(
        lambda: teacher.sample(pt, guidance_weight=gw, generator=gen, classifier=classifier), args.teacher_runs, 2)
    report["teacher_latency_b64"]["steps"] = teacher.steps
    print("teacher", json.dumps(report["teacher_latency_b64"]))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    _plot_report(report, paths, args.models, seed, out)
    return 0


def _plot_report(report: dict, paths: Paths, models: list[str], train_seed: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dnk_training.logging_utils import read_scalars

    st = report["students"]
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8))
    ax[0].bar(models, [st[m]["traj_mse"] for m in models])
    ax[0].set_title("held-out trajectory MSE (free entries, normalized)", fontsize=9)
    ax[1].bar(models, [st[m]["first_action_mse"] for m in models])
    ax[1].set_title("held-out first-action MSE (normalized)", fontsize=9)
    names = [*models, "teacher"]
    lat = [st[m]["latency_b64"]["median_ms"] for m in models] + [report["teacher_latency_b64"]["median_ms"]]
    ax[2].bar(names, lat)
    ax[2].set_yscale("log")
    ax[2].set_title(f"batch-64 latency, median ms ({report['threads']} thread)", fontsize=9)
    for m in models:
        steps, vals = read_scalars(paths.run(m, train_seed) / "scalars.csv")[f"{m}/pred"]
        ax[3].plot(steps, vals, label=m, lw=1)
    ax[3].set_yscale("log")
    ax[3].set_title("training L_pred (CD/CT: consistency loss)", fontsize=9)
    ax[3].set_xlabel("step")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "distill.png", dpi=110)
    plt.close(fig)


def _common(p: argparse.ArgumentParser, resume: str | None = None) -> None:
    add_common_args(p, config="dnk_training/config/distill.yaml", set_example=SET_EXAMPLE, resume=resume)
    p.add_argument("--teacher", help="teacher checkpoint .json (default <artifacts>/teacher.json)")
    p.add_argument("--classifier", help="classifier checkpoint .json (default <artifacts>/classifier.json)")
    p.add_argument("--iql", help="IQL critic checkpoint .json (default <artifacts>/iql.json)")


def _train_seed_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train-seed", type=int, default=None,
                   help="training seed (short for --set train.seed=N); seed S > 0 names the run and the export "
                        "<model>-s<S> (runs/kdm-s2, students/kdm-s2.onnx), seed 0 plain <model>")


@COMMANDS.add("gen-pairs", "teacher-target pairs from the trained teacher (resumable chunks)")
def _gen_pairs(p: argparse.ArgumentParser):
    _common(p, resume="add to the pairs already in <artifacts>/pairs/<split> (chunks are seeded: same pairs as one run)")
    p.add_argument("--split", choices=("train", "heldout"), default="train", help="episodes the contexts come from")
    p.add_argument("--num-pairs", type=int, default=None,
                   help="pairs to generate (default: the config's num_pairs, or heldout_pairs with --split heldout)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this wall time (rerun resumes)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the chunks")
    return cmd_gen_pairs


def cmd_pair_spread(args: argparse.Namespace) -> int:
    """Within-prior spread of the teacher's targets, DDPM vs DDIM, on held-out contexts."""
    from dnk_training.pairs import within_prior_spread

    torch.set_num_threads(args.threads)
    paths = Paths(args)
    teacher, classifier = _load_teacher(paths)
    _, held = _split_windows(teacher, distill_config_from_args(args).heldout_frac)
    rng = np.random.default_rng(args.seed)
    x = torch.as_tensor(held[rng.choice(len(held), size=min(args.samples, len(held)), replace=False)])
    prior = teacher.make_prior(teacher.conditioning.cond_from(x), args.temperature, torch.Generator().manual_seed(args.seed))
    free = ~teacher.conditioning.mask
    gw = teacher.cfg.sampling.guidance_weight
    result = {"samples": int(len(x)), "seeds": args.seeds, "temperature": args.temperature,
              "unit": "mean variance over free entries, normalized units"}
    for sampler in ("ddpm", "ddim"):
        def teach(p: torch.Tensor, g: torch.Generator, s=sampler) -> torch.Tensor:
            return teacher.sample(p, guidance_weight=gw, generator=g, classifier=classifier, sampler=s)

        t0 = time.monotonic()
        result[sampler] = within_prior_spread(teach, prior, free, range(args.seeds))
        result[f"{sampler}_wall_s"] = round(time.monotonic() - t0, 1)
    out = paths.pairs / "spread.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return 0


@COMMANDS.add("pair-spread", "within-prior spread of the teacher's targets (same prior, several generator seeds), "
              "DDPM vs DDIM, on held-out contexts")
def _pair_spread(p: argparse.ArgumentParser):
    _common(p)
    p.add_argument("--samples", type=int, default=256, help="held-out contexts")
    p.add_argument("--seeds", type=int, default=4, help="generator seeds per prior")
    p.add_argument("--temperature", type=float, default=0.5, help="prior temperature tau")
    p.add_argument("--seed", type=int, default=0)
    return cmd_pair_spread


@COMMANDS.add("train-student", "train one one-step student (fdk, kdm, kdmf, cd, ct) on the pairs")
def _train_student(p: argparse.ArgumentParser):
    _common(p, resume="continue from the latest checkpoint in <artifacts>/runs/<model>/checkpoints")
    p.add_argument("--model", choices=MODELS, required=True)
    p.add_argument("--steps", type=int, default=None, help="gradient steps (short for --set train.steps=N)")
    _train_seed_arg(p)
    return cmd_train_student


@COMMANDS.add("export", "ONNX + manifest for students (and selectors), parity-checked")
def _export(p: argparse.ArgumentParser):
    _common(p)
    p.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    p.add_argument("--selectors", action="store_true", help="also export the IQL critic and the return classifier")
    _train_seed_arg(p)
    p.add_argument("--teacher-model", action="store_true",
                   help="also export the teacher's whole deterministic sampler (role 'teacher', students/teacher.onnx)")
    return cmd_export


@COMMANDS.add("quantize", "INT8 copy of an exported one-step student (dynamic MatMul weights), gated against "
              "the float model")
def _quantize(p: argparse.ArgumentParser):
    p.add_argument("--model", required=True, help="a student's .onnx (its .json manifest beside it)")
    p.add_argument("--out", default=None, help="where to write it (default: <model>-int8.onnx beside it)")
    p.add_argument("--tol", type=float, default=None,
                   help="largest int8 vs float RMS difference accepted, normalized units (default 0.02)")

    def run(args: argparse.Namespace) -> int:
        from .export import ExportParityError
        from .quantize import DEFAULT_TOL, quantize_student

        try:
            path, worst, rms = quantize_student(args.model, args.out, DEFAULT_TOL if args.tol is None else args.tol)
        except ExportParityError as err:  # one line for the user, like every other refused input
            raise ValueError(str(err)) from err
        print(f"wrote {path}: int8 vs float max abs difference {worst:.4g}, RMS {rms:.4g} (normalized units)")
        return 0

    return run


@COMMANDS.add("distill-report", "held-out teacher fidelity + batch-64 latency of exported students vs the teacher")
def _report(p: argparse.ArgumentParser):
    _common(p)
    p.add_argument("--models", nargs="*", choices=MODELS, default=list(MODELS))
    p.add_argument("--out", default="results/distill", help="report directory (report.json, distill.png)")
    _train_seed_arg(p)
    p.add_argument("--latency-runs", type=int, default=200, help="timed onnxruntime calls per student")
    p.add_argument("--teacher-runs", type=int, default=10, help="timed teacher samples")
    p.add_argument("--sweep-contexts", type=int, default=32,
                   help="held-out contexts of the prior sweep (how much of the teacher's prior dependence a student keeps)")
    p.add_argument("--sweep-priors", type=int, default=16, help="priors per context of the prior sweep")
    p.add_argument("--sweep-temperature", type=float, default=0.5, help="prior temperature of the sweep")
    return cmd_report
