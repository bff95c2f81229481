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
