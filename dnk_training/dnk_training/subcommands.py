"""What every `dnk-train` subcommand shares: a registry per module, `--set` parsing.

`dnk_training.cli` lists the modules whose `COMMANDS` make up `dnk-train`; a new group of
subcommands is one more `Subcommands()` and one more entry in that list.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import yaml

Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], Handler]


@dataclass(frozen=True)
class Subcommand:
    help: str
    configure: Configure


class Subcommands(dict[str, Subcommand]):
    """name -> Subcommand; `add` is a decorator for `configure(parser) -> handler`."""

    def add(self, name: str, help_text: str) -> Callable[[Configure], Configure]:
        def deco(configure: Configure) -> Configure:
            if name in self:
                raise ValueError(f"dnk-train subcommand '{name}' is registered twice; pick another name")
            self[name] = Subcommand(help_text, configure)
            return configure

        return deco


def add_set_arg(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config field, e.g. --set {example} (value parsed as YAML)")


def parse_overrides(items: list[str], example: str) -> dict[str, object]:
    """`--set a.b=value` items as {dotted key: YAML-parsed value}."""
    overrides: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set '{item}' is not KEY=VALUE (e.g. --set {example})")
        k, v = item.split("=", 1)
        overrides[k] = yaml.safe_load(v)
    return overrides


def add_common_args(p: argparse.ArgumentParser, *, config: str, set_example: str, resume: str | None = None,
                    preset: str = "small") -> None:
    """The flags every dnk-train / dnk-eval subcommand spells the same way.

    --artifacts (the task's artifact folder), --preset and --set (of `config`), --threads,
    --no-progress, and --resume where continuing makes sense (`resume` is its help text).
    """
    p.add_argument("--artifacts", default="artifacts/halfcheetah",
                   help="the task's artifact folder: teacher/classifier/iql checkpoints, runs/<model>/ "
                        "(scalars.csv + checkpoints), pairs/, students/, selectors/")
    p.add_argument("--preset", default=preset, help=f"preset in {config} (default {preset}; smoke: seconds, for checks)")
    add_set_arg(p, set_example)
    p.add_argument("--threads", type=int, default=1, help="torch / onnxruntime intra-op threads")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    if resume:
        p.add_argument("--resume", action="store_true", help=resume)
