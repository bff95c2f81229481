import json

import pytest

from dnk_training import cli
from dnk_training.classifier import ReturnClassifier
from dnk_training.iql import IQLCritic
from dnk_training.teacher import Teacher


def test_train_all_and_eval_teacher(tiny_yaml, tmp_path) -> None:
    out = tmp_path / "art"
    common = ["--task", str(tiny_yaml), "--artifacts", str(out), "--no-progress"]
    assert cli.main(["train-teacher", *common, "--set", "teacher.train.steps=3"]) == 0
    assert Teacher.load(out / "teacher.json").cfg.teacher.train.steps == 3
    # --resume continues the same run to a longer horizon
    assert cli.main(["train-teacher", *common, "--set", "teacher.train.steps=6", "--resume"]) == 0
    assert json.loads((out / "teacher.json").read_text())["step"] == 6
    assert (out / "runs" / "teacher" / "checkpoints" / "ckpt_00000006.json").is_file()
    assert cli.main(["train-classifier", *common]) == 0
    assert cli.main(["train-iql", *common]) == 0
    ReturnClassifier.load(out / "classifier.json")
    IQLCritic.load(out / "iql.json")
    assert json.loads((out / "normalizer.json").read_text())["mean"].__len__() == 23
    report = tmp_path / "eval.json"
    rc = cli.main(["eval-teacher", "--artifacts", str(out), "--seeds", "0", "--episodes", "2", "--max-steps", "2",
                   "--latency-decisions", "1", "--out", str(report), "--no-progress"])
    assert rc == 0
    r = json.loads(report.read_text())
    assert r["eval"]["episode_lengths"] == [2, 2]
    assert r["latency"]["num_candidates"] == 4 and r["latency"]["median_ms"] > 0


def test_bad_arguments_exit_with_message(tiny_yaml, tmp_path, capsys) -> None:
    rc = cli.main(["train-teacher", "--task", str(tiny_yaml), "--artifacts", str(tmp_path), "--set", "teacher.train.steps"])
    assert rc == 2 and "is not KEY=VALUE" in capsys.readouterr().err
    rc = cli.main(["train-iql", "--task", str(tiny_yaml), "--artifacts", str(tmp_path), "--dataset", str(tmp_path / "missing.hdf5")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    rc = cli.main(["train-iql", "--task", str(tiny_yaml), "--artifacts", str(tmp_path), "--set", "iql.expectile=1.5"])
    assert rc == 2 and "expectile" in capsys.readouterr().err


def test_parser_lists_both_command_groups_and_refuses_duplicates(capsys) -> None:
    from dnk_training import distill_cli

    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out
    for name in [*cli.COMMANDS, *distill_cli.COMMANDS]:
        assert name in listed
    assert {"train-teacher", "eval-teacher", "gen-pairs", "train-student", "export", "distill-report"} <= {
        *cli.COMMANDS, *distill_cli.COMMANDS}
    with pytest.raises(ValueError, match="registered twice"):
        cli.COMMANDS.add("train-teacher", "dup")(lambda p: lambda a: 0)
