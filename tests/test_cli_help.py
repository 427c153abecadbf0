"""Every flag generated from a config dataclass (``rnnkit train TASK``) carries a help text, taken
from the field's ``metadata["help"]``."""
import argparse
import dataclasses

import pytest

from rnnkit.cli.main import build_parser, main
from rnnkit.cli.options import add_config_flags, field_help

GENERATED = ("data", "model", "training")   # the groups add_config_flags fills


def subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def train_tasks():
    return subparsers(subparsers(build_parser())["train"])


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "forecast", "seq2seq", "cond",
                                  "recognize", "image-to-text"])
def test_every_generated_flag_has_help(task):
    parser = train_tasks()[task]
    groups = {g.title: g._group_actions for g in parser._action_groups if g.title in GENERATED}
    assert set(groups) == set(GENERATED) and all(groups.values())
    for title, actions in groups.items():
        for action in actions:
            text = action.help.split(" (default ")[0].strip()
            assert text and not text.startswith("(default"), \
                f"rnnkit train {task}: {action.option_strings[0]} ({title}) has no help text"
            assert len(text) <= 80, f"{action.option_strings[0]}: help longer than one short line"


def test_every_task_is_covered():
    assert set(train_tasks()) == {"lm", "classify", "tag", "forecast", "seq2seq", "cond",
                                  "recognize", "image-to-text"}


def test_help_comes_from_field_metadata_and_is_escaped():
    @dataclasses.dataclass
    class Config:
        rate: float = dataclasses.field(default=0.5, metadata={"help": "keep 50% of the units"})
        on: bool = dataclasses.field(default=True, metadata={"help": "switch it on"})
        bare: int = 3

    assert field_help(dataclasses.fields(Config)[0]) == "keep 50% of the units"
    parser = argparse.ArgumentParser()
    add_config_flags(parser, Config, defaults={"rate": 0.25})
    text = " ".join(parser.format_help().split())
    assert "keep 50% of the units (default 0.25)" in text
    assert "switch it on (default True)" in text and "--bare INT (default 3)" in text


def test_train_classify_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main(["train", "classify", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--min-count INT training words seen fewer times become <unk> (default 2)" in out
    assert "--pooling STR outputs over time to one vector: last, mean, max or attention" in out
    assert "--max-steps INT" in out and "(default 3000)" in out     # the task's own step count
