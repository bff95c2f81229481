from pathlib import Path

import numpy as np
import pytest

from training_testing import make_arrays, write_hdf5
from dnk_training.datasets import (
    DatasetError,
    OfflineData,
    fit_normalizer,
    load_d4rl_hdf5,
    load_minari,
    make_windows,
    minari_available,
    returns_to_go,
    split_episodes,
    validate,
)
from dnk_training.normalizer import Normalizer


def test_good_file_loads_and_splits(small_hdf5: Path) -> None:
    data = load_d4rl_hdf5(small_hdf5)
    assert len(data) == 75 and data.obs_dim == 17 and data.act_dim == 6
    assert split_episodes(data) == [(0, 30), (30, 55), (55, 75)]
    w = make_windows(data, horizon=4)
    assert w.x.shape == (27 + 22 + 17, 4, 23)
    # window 0 of episode 1 is rows 30..33 of [obs, act]
    first_ep1 = np.flatnonzero(w.episode_of == 1)[0]
    np.testing.assert_array_equal(w.x[first_ep1, :, :17], data.observations[30:34])
    np.testing.assert_array_equal(w.x[first_ep1, :, 17:], data.actions[30:34])


def test_split_on_terminals_timeouts_and_file_end() -> None:
    a = make_arrays([5, 5, 5])
    a["timeouts"][:] = False
    a["terminals"][3] = True   # terminal ends episode 0 after 4 rows
    a["timeouts"][9] = True    # timeout ends episode 1 after row 9
    data = validate(a)         # rows 10..14 run to the file end
    assert split_episodes(data) == [(0, 4), (4, 10), (10, 15)]


def test_returns_to_go_hand_computed() -> None:
    # rewards 1, 2, 3 with a terminal at the end: penalty -100 on the last step
    rtg = returns_to_go(np.array([1.0, 2.0, 3.0]), terminal=True, discount=0.5, terminal_penalty=-100.0)
    np.testing.assert_allclose(rtg, [-22.25, -46.5, -97.0])
    rtg = returns_to_go(np.array([1.0, 2.0, 3.0]), terminal=False, discount=0.5, terminal_penalty=-100.0)
    np.testing.assert_allclose(rtg, [2.75, 3.5, 3.0])


def test_windows_and_values_on_hand_made_episode() -> None:
    obs = np.arange(6, dtype=np.float32).reshape(3, 2)        # rows [0,1],[2,3],[4,5]
    act = np.array([[10.0], [20.0], [30.0]], dtype=np.float32)
    data = OfflineData(obs, act, np.array([1, 2, 3], np.float32), np.array([0, 0, 1], bool),
                       np.zeros(3, bool), obs.copy(), "hand")
    w = make_windows(data, horizon=2, discount=0.5, terminal_penalty=-100.0)
    np.testing.assert_array_equal(w.x, [[[0, 1, 10], [2, 3, 20]], [[2, 3, 20], [4, 5, 30]]])
    np.testing.assert_allclose(w.values, [-22.25, -46.5])
    np.testing.assert_array_equal(w.start_row, [0, 1])


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda a: a.pop("next_observations"), r"missing key\(s\) \['next_observations'\]"),
        (lambda a: a.update(actions=a["actions"][:-1]), r"'actions' has shape \(74, 6\)"),
        (lambda a: a.update(rewards=np.zeros((75, 2), np.float32)), r"'rewards' has shape \(75, 2\)"),
        (lambda a: a.update(observations=a["observations"].astype(np.int32), next_observations=a["observations"].astype(np.int32)), r"'observations' has dtype int32"),
        (lambda a: a["rewards"].__setitem__(7, np.nan), r"'rewards' contains 1 NaN/inf value\(s\), first at row 7"),
        (lambda a: a["actions"].__setitem__((3, 2), np.inf), r"'actions' contains 1 NaN/inf"),
        (lambda a: a.update(terminals=np.full(75, 2)), r"'terminals' has dtype"),
        (lambda a: a.update(next_observations=a["next_observations"][:, :5]), r"'next_observations' has shape \(75, 5\)"),
    ],
)
def test_bad_files_raise_named_errors(tmp_path: Path, mutate, match) -> None:
    arrays = make_arrays([30, 25, 20])
    mutate(arrays)
    path = write_hdf5(tmp_path / "bad.hdf5", arrays)
    with pytest.raises(DatasetError, match=match):
        load_d4rl_hdf5(path)


def test_empty_and_missing_files(tmp_path: Path) -> None:
    arrays = {k: v[:0] for k, v in make_arrays([5]).items()}
    with pytest.raises(DatasetError, match="empty"):
        load_d4rl_hdf5(write_hdf5(tmp_path / "empty.hdf5", arrays))
    with pytest.raises(DatasetError, match="does not exist"):
        load_d4rl_hdf5(tmp_path / "nope.hdf5")
    (tmp_path / "junk.hdf5").write_text("not hdf5")
    with pytest.raises(DatasetError, match="not a readable HDF5"):
        load_d4rl_hdf5(tmp_path / "junk.hdf5")


def test_short_episodes_skip_or_raise() -> None:
    data = validate(make_arrays([10, 3, 10]), source="f.hdf5")
    w = make_windows(data, horizon=4, drop_short_episodes=True)
    assert set(np.unique(w.episode_of)) == {0, 2}
    with pytest.raises(DatasetError, match=r"episode 1 \(rows 10-12\) has 3 steps, shorter than the horizon 4"):
        make_windows(data, horizon=4, drop_short_episodes=False)
    with pytest.raises(DatasetError, match="no episode has at least 32 steps"):
        make_windows(data, horizon=32)


def test_minari_guard() -> None:
    if minari_available():
        pytest.skip("minari is installed here; the guard only applies without it")
    with pytest.raises(DatasetError, match="'minari' package is not installed"):
        load_minari("mujoco/halfcheetah/expert-v0")


def test_normalizer_roundtrip_and_json(tmp_path: Path, small_hdf5: Path) -> None:
    data = load_d4rl_hdf5(small_hdf5)
    norm = fit_normalizer(data)
    rows = np.concatenate([data.observations, data.actions], axis=1)
    xn = norm.normalize(rows)
    np.testing.assert_allclose(xn.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(xn.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(norm.denormalize(xn), rows, atol=1e-5)
    norm.save(tmp_path / "n.json")
    again = Normalizer.load(tmp_path / "n.json")
    np.testing.assert_array_equal(again.mean, norm.mean)
    with pytest.raises(ValueError, match="input has 5 columns"):
        norm.normalize(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="std must be > 0"):
        Normalizer([0.0], [0.0])


def test_dataset_found_by_name_on_the_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from dnk_training import cli
    from dnk_training.datasets import find_dataset

    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write_hdf5(second / "toy.hdf5", make_arrays([6, 6]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DNK_DATASETS", f"{first}:{second}")
    assert find_dataset("toy.hdf5") == second / "toy.hdf5"
    assert len(load_d4rl_hdf5("toy.hdf5")) == 12
    write_hdf5(first / "toy.hdf5", make_arrays([4]))  # an earlier folder wins
    assert find_dataset("toy.hdf5") == first / "toy.hdf5"
    with pytest.raises(DatasetError) as err:
        find_dataset("missing.hdf5")
    for place in (first / "missing.hdf5", second / "missing.hdf5", tmp_path / "datasets" / "missing.hdf5"):
        assert str(place) in str(err.value)
    assert "--dataset" in str(err.value) and "DNK_DATASETS" in str(err.value)
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "toy.hdf5  rows 4  episodes 1" in out and str(first) in out
    monkeypatch.setenv("DNK_DATASETS", str(tmp_path / "empty"))
    assert cli.main(["datasets", "--no-stats"]) == 1
