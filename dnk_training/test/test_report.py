"""Results merging, Table I rendering, Pareto front and candidate PCA on hand-made results."""

import json

import numpy as np
import pytest

from dnk_training.eval.cli import main
from dnk_training.eval.metrics import normalized_return
from dnk_training.eval.report import _pareto_front, label_heights, pca_project, run_metrics
from dnk_training.eval.results import (
    Candidates, EpisodeResult, MethodRun, ResultsFile, SeedResult, load_results, merge_files, merge_runs,
    save_results,
)

ENV = "HalfCheetah-v5"
HOST = {"node": "test", "cpu": "test", "python": "3"}


def _seed(seed: int, returns: list[float], latencies: list[float], lengths: list[int] | None = None) -> SeedResult:
    """lengths: steps per episode; shorter than max_steps (10) means the env ended it early."""
    lengths = lengths or [10] * len(returns)
    eps = [EpisodeResult(episode=i, env_seed=100 + i, episode_return=r, length=n, terminated=n < 10,
                         normalized=float(normalized_return(r, ENV))) for i, (r, n) in enumerate(zip(returns, lengths))]
    return SeedResult(seed=seed, episodes=eps, latency_ms=latencies)


def _candidates(rng: np.random.Generator, shift: float) -> Candidates:
    states = [[0.0] * 3, [1.0] * 3]
    trajs = (rng.normal(size=(2, 16, 4, 5)) + shift).tolist()
    return Candidates(states=states, trajectories=trajs)


def _run(method: str, seeds: list[SeedResult], cand: Candidates | None = None) -> MethodRun:
    return MethodRun(method=method, env_id=ENV, max_steps=10, setting={"policy": method}, host=HOST,
                     seeds=seeds, candidates=cand)


def test_merge_disjoint_seeds_and_refuse_conflicts(tmp_path):
    a = _run("KDM", [_seed(0, [1000.0, 2000.0], [1.0, 2.0])])
    b = _run("KDM", [_seed(1, [3000.0, 3000.0], [3.0])])
    save_results(ResultsFile(runs=[a]), tmp_path / "a.json")
    save_results(ResultsFile(runs=[b]), tmp_path / "b.json")
    merged = merge_files([tmp_path / "a.json", tmp_path / "b.json"])
    assert len(merged.runs) == 1 and [s.seed for s in merged.runs[0].seeds] == [0, 1]
    # Same seed twice, different setting, different host: each refused with a reason.
    with pytest.raises(ValueError, match=r"seed\(s\) \[0\]"):
        merge_runs([a, a])
    with pytest.raises(ValueError, match="different settings"):
        merge_runs([a, b.model_copy(update={"setting": {"policy": "other"}})])
    with pytest.raises(ValueError, match="hosts"):
        merge_runs([a, b.model_copy(update={"host": {"node": "elsewhere"}})])


def test_load_results_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="bad.json"):
        load_results(bad)
    with pytest.raises(ValueError, match="not found"):
        load_results(tmp_path / "missing.json")


def test_run_metrics_from_results():
    run = _run("KDM", [_seed(0, [1000.0, 2000.0], [1.0, 2.0]), _seed(1, [3000.0, 3000.0], [3.0, 6.0])])
    m = run_metrics(run)
    n = normalized_return(np.array([1000.0, 2000.0, 3000.0, 3000.0]), ENV)
    seed_means = np.array([n[:2].mean(), n[2:].mean()])
    assert m.return_mean == pytest.approx(seed_means.mean())
    assert m.return_std == pytest.approx(seed_means.std())
    assert m.worst_case == pytest.approx(seed_means[0])
    assert m.intra_run_std == pytest.approx(n[:2].std() / 2)
    assert m.latency_mean_ms == pytest.approx(3.0)


def test_pareto_front():
    lat = np.array([1.0, 2.0, 100.0, 3.0])
    ret = np.array([0.5, 0.4, 0.9, 0.7])
    assert _pareto_front(lat, ret) == [0, 3, 2]  # point 1 is dominated by point 0


def test_pareto_labels_of_close_points_are_spread_and_far_ones_stay():
    """Four Koopman rows within 0.1 ms and 0.04 return (Walker2d's plot) get labels one gap apart;
    the teacher at 1000 ms keeps its label at its own return."""
    lat = np.array([1.7, 1.75, 1.8, 1.85, 1127.0])
    ret = np.array([0.294, 0.297, 0.273, 0.257, 0.296])
    y = label_heights(lat, ret, gap=0.02)
    near = np.sort(y[:4])
    assert np.all(np.diff(near) >= 0.02 - 1e-12) and np.all(y[:4] >= ret[:4])
    assert y[4] == ret[4]
    assert y[3] == ret[3]  # the lowest keeps its place


def test_pca_fit_on_reference():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(64, 4, 3)) * np.array([5.0, 1.0, 0.1])
    other = rng.normal(size=(64, 4, 3)) + 3.0
    proj = pca_project({"Teacher": ref, "X": other}, "Teacher")
    assert proj["Teacher"].shape == (64, 2) and proj["X"].shape == (64, 2)
    assert np.allclose(proj["Teacher"].mean(0), 0.0, atol=1e-9)  # centred on the reference
    var = proj["Teacher"].var(0)
    assert var[0] >= var[1]


def test_report_cli_writes_table_and_figures(tmp_path):
    rng = np.random.default_rng(1)
    teacher = _run("Teacher", [_seed(s, [4000.0 + s, 4100.0], [100.0, 120.0]) for s in range(3)],
                   _candidates(rng, 0.0))
    student = _run("DNK (IQL)", [_seed(s, [5000.0, 5200.0 - s], [1.0, 1.5], [10, 4 + s]) for s in range(3)],
                   _candidates(rng, 0.5))
    save_results(ResultsFile(runs=[student]), tmp_path / "s.json")
    save_results(ResultsFile(runs=[teacher]), tmp_path / "t.json")
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "s.json"), str(tmp_path / "t.json"), "--out", str(out)]) == 0
    md = (out / "table1.md").read_text().splitlines()
    assert md[2].startswith("| HalfCheetah | Teacher |")  # paper's row order: teacher first
    m = run_metrics(student)
    assert f"{m.return_mean:.4f} ± {m.return_std:.4f}" in md[3] and "1.25 ± 0.25" in md[3]
    # how long episodes lasted comes from the env's record: 3 of 6 ended early, at 4, 5 and 6 steps
    assert "| 8 / 10 (3/6) |" in md[3] and "| 10 / 10 (0/" in md[2]
    rows = json.loads((out / "table1.json").read_text())
    assert [r["method"] for r in rows] == ["Teacher", "DNK (IQL)"]
    sig = json.loads((out / "significance.json").read_text())  # DNK (IQL) against every other row
    assert [(r["a"], r["b"]) for r in sig] == [("DNK (IQL)", "Teacher")] and sig[0]["difference"] > 0
    assert main(["report", str(tmp_path / "s.json"), str(tmp_path / "t.json"), "--out", str(out / "t"),
                 "--reference", "Teacher"]) == 0  # a study row can be the reference
    sig = json.loads((out / "t" / "significance.json").read_text())
    assert [(r["a"], r["b"]) for r in sig] == [("Teacher", "DNK (IQL)")] and sig[0]["difference"] < 0
    for png in ("pareto.png", "candidates_pca.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # merge through the CLI, then an unknown file gives exit code 2, not a traceback
    assert main(["merge", str(tmp_path / "s.json"), str(tmp_path / "t.json"), "--out", str(tmp_path / "m.json")]) == 0
    assert len(load_results(tmp_path / "m.json").runs) == 2
    assert main(["report", str(tmp_path / "nope.json"), "--out", str(out)]) == 2


def test_a_row_pools_its_trained_models_and_reports_their_spread():
    """Three training seeds x two eval seeds: return stats over the 6 (model, eval seed) runs, the
    std over the 3 models' means beside it; the models' runs stay separate when merged."""
    models = [_run("KDM", [_seed(0, [r, r], [1.0]), _seed(1, [r + 600.0, r + 600.0], [1.0])]).model_copy(
        update={"training_seed": t, "setting": {"student": f"kdm-s{t}"}}) for t, r in enumerate([1000.0, 2000.0, 4000.0])]
    merged = merge_runs(models)
    assert len(merged.runs) == 3  # different settings are fine across training seeds
    from dnk_training.eval.report import group_rows, row_metrics

    (row,) = group_rows(merged.runs)
    m = row_metrics(row)
    block = np.array([[normalized_return(r, ENV), normalized_return(r + 600.0, ENV)] for r in (1000.0, 2000.0, 4000.0)])
    assert m.num_seeds == 6 and m.num_training_seeds == 3
    assert np.isclose(m.return_mean, block.mean()) and np.isclose(m.return_std, block.std())
    assert np.isclose(m.training_seed_std, block.mean(1).std())
    assert np.isclose(m.worst_case, block.min())


def test_bootstrap_difference_separates_clear_gaps_from_noise():
    from dnk_training.eval.metrics import bootstrap_difference

    rng = np.random.default_rng(0)
    same = {t: list(rng.normal(0.3, 0.05, 15)) for t in range(3)}
    other = {t: list(rng.normal(0.3, 0.05, 15)) for t in range(3)}
    better = {t: list(rng.normal(0.4, 0.05, 15)) for t in range(3)}
    clear = bootstrap_difference(better, same, resamples=4000)
    assert clear["ci95_low"] > 0 and clear["p_greater"] > 0.99
    assert np.isclose(clear["difference"], np.mean([np.mean(v) for v in better.values()]) - 0.3, atol=0.03)
    noise = bootstrap_difference(other, same, resamples=4000)
    assert noise["ci95_low"] < 0 < noise["ci95_high"]
    # one wildly different model among three widens the interval: models, not only episodes, are resampled
    spread = {0: [0.1] * 15, 1: [0.4] * 15, 2: [0.7] * 15}
    flat = {0: [0.1, 0.4, 0.7] * 15}
    assert (bootstrap_difference(spread, same, resamples=4000)["ci95_high"]
            - bootstrap_difference(spread, same, resamples=4000)["ci95_low"]) > 0.2
    assert bootstrap_difference(flat, same, resamples=4000)["ci95_high"] - \
        bootstrap_difference(flat, same, resamples=4000)["ci95_low"] < 0.2
