"""Table I (Markdown + JSON), the latency-vs-return Pareto plot (Fig. 3) and the candidate PCA
projection (Fig. 4) from merged `dnk-eval` results."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (backend must be chosen first)
import numpy as np  # noqa: E402

from dnk_training.eval.metrics import MethodMetrics, bootstrap_difference, env_family, method_metrics  # noqa: E402
from dnk_training.eval.results import MethodRun, ResultsFile  # noqa: E402

# Row order of the paper's Table I; unknown labels follow in file order.
METHOD_ORDER = ["Teacher", "CD", "CT", "KDM", "KDM-F", "DNK (IQL)", "DNK (classifier)"]
TASK_NAMES = {"halfcheetah": "HalfCheetah", "walker2d": "Walker2d", "hopper": "Hopper"}
TEACHER = "Teacher"
REFERENCE = "DNK (IQL)"  # the row every other row is compared with in significance.md


def _order(runs: list[MethodRun]) -> list[MethodRun]:
    rank = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted(runs, key=lambda r: (r.env_id, rank.get(r.method, len(rank)), r.training_seed or 0))


def group_rows(runs: list[MethodRun]) -> list[list[MethodRun]]:
    """Table I rows: one per (env, method), holding that method's runs, one per trained model."""
    groups: dict[tuple[str, str], list[MethodRun]] = {}
    for r in _order(runs):
        groups.setdefault((r.env_id, r.method), []).append(r)
    for group in groups.values():
        if len({tuple(sorted(r.host.items())) for r in group}) > 1 or len({r.max_steps for r in group}) > 1:
            raise ValueError(f"{group[0].method!r} on {group[0].env_id}: training seeds evaluated on different hosts "
                             "or with different max_steps cannot share a row; rerun them under one setting")
    return list(groups.values())


def episodes_by_model(row: list[MethodRun]) -> dict[int | None, list[float]]:
    """Training seed -> normalized returns of every episode of that model (evaluation seeds pooled)."""
    return {r.training_seed: [e.normalized for s in r.seeds for e in s.episodes] for r in row}


def row_metrics(row: list[MethodRun]) -> MethodMetrics:
    """Table I row over every (training seed, evaluation seed) of the method."""
    for r in row:
        if not r.seeds:
            raise ValueError(f"{r.method!r} on {r.env_id} (training seed {r.training_seed}) has no finished seeds; "
                             "rerun or drop it")
    return method_metrics(
        {(r.training_seed, s.seed): [e.normalized for e in s.episodes] for r in row for s in r.seeds},
        [e.episode_return for r in row for s in r.seeds for e in s.episodes],
        [x for r in row for s in r.seeds for x in s.latency_ms],
        [e.length for r in row for s in r.seeds for e in s.episodes],
        [e.terminated for r in row for s in r.seeds for e in s.episodes],
    )


def run_metrics(run: MethodRun) -> MethodMetrics:
    """Table I row of one method run (one trained model)."""
    return row_metrics([run])


def _load(row: list[MethodRun]) -> str:
    """Mean host load average over the seeds: latencies on a shared CPU only compare under similar load."""
    loads = [s.load_avg_1min for r in row for s in r.seeds if s.load_avg_1min is not None]
    return f"{np.mean(loads):.1f}" if loads else "n/a"


def table_markdown(rows: list[tuple[list[MethodRun], MethodMetrics]]) -> str:
    """The paper's Table I layout, plus P95 latency, the spread between trained models and the run size."""
    lines = [
        "| Task | Method | Return | Latency (ms) | Median / P95 latency (ms) | Intra-run std | Worst-case "
        "| Std over trained models | Models x eval seeds x episodes | Steps per episode: mean / cap (ended early) "
        "| Host load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row, m in rows:
        run = row[0]
        per_model = m.num_seeds // m.num_training_seeds
        intra = f"{m.intra_run_std:.4f}" if m.num_episodes > m.num_seeds else "n/a (1 episode per run)"
        lines.append(
            f"| {TASK_NAMES[env_family(run.env_id)]} | {run.method} | {m.return_mean:.4f} ± {m.return_std:.4f} "
            f"| {m.latency_mean_ms:.2f} ± {m.latency_std_ms:.2f} | {m.latency_median_ms:.2f} / {m.latency_p95_ms:.2f} "
            f"| {intra} | {m.worst_case:.4f} "
            f"| {m.training_seed_std:.4f} | {m.num_training_seeds} x {per_model} x {m.num_episodes // m.num_seeds} "
            f"| {m.episode_steps_mean:.0f} / {run.max_steps} ({m.terminated_episodes}/{m.num_episodes}) | {_load(row)} |"
        )
    return "\n".join(lines) + "\n"


def significance(rows: list[list[MethodRun]], reference: str = REFERENCE) -> list[dict]:
    """reference - other for every other row of the same env (hierarchical bootstrap over trained
    models, then episodes); empty when the reference row is missing."""
    out = []
    for ref in (r for r in rows if r[0].method == reference):
        for other in rows:
            if other[0].env_id != ref[0].env_id or other is ref:
                continue
            out.append({"env_id": ref[0].env_id, "a": reference, "b": other[0].method,
                        **bootstrap_difference(episodes_by_model(ref), episodes_by_model(other))})
    return out


def significance_markdown(results: list[dict]) -> str:
    lines = ["| Task | Comparison | Difference (normalized return) | 95 % bootstrap interval | P(difference > 0) "
             "| Models (a / b) |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {TASK_NAMES[env_family(r['env_id'])]} | {r['a']} - {r['b']} | {r['difference']:+.4f} "
                     f"| [{r['ci95_low']:+.4f}, {r['ci95_high']:+.4f}] | {r['p_greater']:.3f} "
                     f"| {r['models_a']} / {r['models_b']} |")
    return "\n".join(lines) + "\n"


def _pareto_front(lat: np.ndarray, ret: np.ndarray) -> list[int]:
    """Indices not dominated by a point with lower-or-equal latency and higher-or-equal return."""
    order = np.argsort(lat)
    front, best = [], -np.inf
    for i in order:
        if ret[i] > best:
            front.append(int(i))
            best = ret[i]
    return front


def label_heights(lat: np.ndarray, ret: np.ndarray, gap: float, band: float = 0.5) -> np.ndarray:
    """Return-axis height of each point's label: its own return, raised until it is `gap` above every
    label of a point within `band` decades of latency (the Koopman rows sit within 0.1 ms of each other)."""
    y = ret.astype(float).copy()
    placed: list[int] = []
    for i in np.argsort(ret, kind="stable"):
        for j in placed:
            if abs(np.log10(lat[i]) - np.log10(lat[j])) < band and y[i] < y[j] + gap:
                y[i] = y[j] + gap
        placed.append(int(i))
    return y


def plot_pareto(rows: list[tuple[list[MethodRun], MethodMetrics]], path: Path) -> Path:
    """Fig. 3: mean decision latency (log x) vs normalized return, one panel per task."""
    tasks = sorted({env_family(r[0].env_id) for r, _ in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        sel = [(r[0], m) for r, m in rows if env_family(r[0].env_id) == task]
        lat = np.array([m.latency_mean_ms for _, m in sel])
        ret = np.array([m.return_mean for _, m in sel])
        std = np.array([m.return_std for _, m in sel])
        span = float(np.ptp(np.concatenate([ret - std, ret + std])))
        for (r, m), x, y, y_label in zip(sel, lat, ret, label_heights(lat, ret, gap=0.045 * max(span, 1e-6))):
            ax.errorbar(x, y, yerr=m.return_std, fmt="o", capsize=3,
                        color="tab:red" if r.method.startswith("DNK") else "tab:blue")
            ax.annotate(r.method, (x, y), xytext=(x * 1.25, y_label), fontsize=8, va="center",
                        arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5} if y_label != y else None)
        front = _pareto_front(lat, ret)
        ax.plot(lat[front], ret[front], "--", color="gray", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel("decision latency per control step (ms, log)")
        ax.set_ylabel("D4RL-normalized return")
        ax.set_title(f"{TASK_NAMES[task]}: latency vs return")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def pca_project(groups: dict[str, np.ndarray], reference: str | None) -> dict[str, np.ndarray]:
    """2-D PCA of flattened candidates; axes fitted on `reference`'s candidates (the teacher),
    or on all pooled when there is none. Features are standardized by the pooled std so that
    no single large-scale column (e.g. velocities) dominates."""
    flat = {k: v.reshape(v.shape[0], -1) for k, v in groups.items()}
    pooled = np.concatenate(list(flat.values()))
    mu = pooled.mean(0)
    sd = pooled.std(0)
    sd[sd < 1e-8] = 1.0  # fixed entries (row-0 obs) are identical across candidates
    fit = (flat[reference] if reference in flat else pooled)
    fit_z = (fit - mu) / sd
    _, _, vt = np.linalg.svd(fit_z - fit_z.mean(0), full_matrices=False)
    axes = vt[:2].T
    return {k: ((v - mu) / sd - fit_z.mean(0)) @ axes for k, v in flat.items()}


def plot_candidates_pca(runs: list[MethodRun], path: Path) -> Path | None:
    """Fig. 4: PCA of each method's candidates for the same states (one panel per task x state)."""
    by_task: dict[str, list[MethodRun]] = {}
    for r in runs:
        if r.candidates is not None:
            by_task.setdefault(env_family(r.env_id), []).append(r)
    if not by_task:
        return None
    n_states = max(len(r.candidates.states) for rs in by_task.values() for r in rs)
    fig, axes = plt.subplots(len(by_task), n_states, figsize=(4 * n_states, 4 * len(by_task)), squeeze=False)
    for row, (task, task_runs) in enumerate(sorted(by_task.items())):
        ref_states = np.asarray(task_runs[0].candidates.states)
        for r in task_runs:
            if not np.allclose(np.asarray(r.candidates.states), ref_states, atol=1e-4):
                raise ValueError(f"{r.method!r} on {task}: candidates were drawn for other states than "
                                 f"{task_runs[0].method!r}; rerun with the same --candidate-states")
        for s in range(len(ref_states)):
            ax = axes[row][s]
            groups: dict[str, np.ndarray] = {}
            for r in task_runs:  # one student under two selectors has one candidate set: plot it once
                c = np.asarray(r.candidates.trajectories[s])
                if not any(g.shape == c.shape and np.array_equal(g, c) for g in groups.values()):
                    groups[r.method] = c
            proj = pca_project(groups, TEACHER)
            for method, pts in proj.items():
                ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.6, label=method,
                           marker="x" if method == TEACHER else "o")
            ax.set_title(f"{TASK_NAMES[task]} state {s}", fontsize=9)
            ax.set_xlabel("PC1 (fit on teacher)" if TEACHER in proj else "PC1")
            ax.set_ylabel("PC2")
        axes[row][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(results: ResultsFile, out_dir: str | Path, reference: str | None = None) -> dict[str, Path]:
    """table1.md, table1.json, pareto.png, candidates_pca.png under out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    groups = group_rows(results.runs)
    rows = [(g, row_metrics(g)) for g in groups]
    paths = {"table_md": out / "table1.md", "table_json": out / "table1.json"}
    paths["table_md"].write_text(table_markdown(rows))
    paths["table_json"].write_text(json.dumps([
        {"task": TASK_NAMES[env_family(g[0].env_id)], "env_id": g[0].env_id, "method": g[0].method,
         "max_steps": g[0].max_steps, "training_seeds": [r.training_seed for r in g],
         "settings": [r.setting for r in g], "host": g[0].host,
         "load_avg_1min_per_seed": [s.load_avg_1min for r in g for s in r.seeds], **m.model_dump()}
        for g, m in rows], indent=2) + "\n")
    sig = significance(groups, reference or REFERENCE)
    if sig:
        paths["significance_md"] = out / "significance.md"
        paths["significance_md"].write_text(significance_markdown(sig))
        paths["significance_json"] = out / "significance.json"
        paths["significance_json"].write_text(json.dumps(sig, indent=2) + "\n")
    paths["pareto_png"] = plot_pareto(rows, out / "pareto.png")
    pca = plot_candidates_pca([g[0] for g in groups], out / "candidates_pca.png")
    if pca is not None:
        paths["pca_png"] = pca
    return paths
