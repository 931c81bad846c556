"""`hub-emo`: parsers generated from the dataclasses, one exit-code rule, NAME=ID parsed once."""

from __future__ import annotations

import dataclasses

import pytest

from hub_emo.cli import USAGE_ERROR, UsageError, main, named
from hub_emo.training.arguments import TrainArguments, parse


def test_train_help_is_generated_from_the_dataclass(capsys):
    from transformers import TrainingArguments

    assert main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for f in [*dataclasses.fields(TrainArguments), *dataclasses.fields(TrainingArguments)]:
        if f.init:  # hub_emo's own options and every one of the Trainer's
            assert f"--{f.name}" in text, f.name
    assert "[VALUE ...]" not in text
    assert "--strategy STRATEGY" in text and "(default: weighted_sum)" in text


def test_config_file_then_flags_then_overrides(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("strategy: lora\nlearning_rate: 0.001\nmax_seconds: 3\n")
    args = parse(config, ["--learning-rate", "0.01", "--crop", "center"], seed=7)
    assert (args.strategy, args.learning_rate, args.max_seconds, args.crop, args.seed) == ("lora", 0.01, 3.0, "center", 7)
    assert parse(config).learning_rate == 0.001 and parse().strategy == "weighted_sum"
    with pytest.raises(ValueError, match="unknown options"):
        parse(argv=["--not_an_option", "1"])


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--crop", "diagonal"], "crop must be one of"),
        (["train", "--strategy", "nope"], "unknown strategy"),
        (["demo", "--backbone", "facebook/wav2vec2-base"], "--backbone wants NAME=VALUE"),
        (["probe", "-m", "a=x", "-m", "a=y", "-d", "nowhere"], "'a' is given twice"),
        (["prepare", "crema_d", "--root", "/x", "--option", "crema_d=1"], "not NAME.KEY=VALUE"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == USAGE_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hub-emo {argv[0]}: error: ") and message in err[0], err


def test_bad_config_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: lora\nnot_an_option: 1\n")
    assert main(["train", str(bad)]) == USAGE_ERROR
    assert "bad.yaml: unknown options ['not_an_option']" in capsys.readouterr().err


def test_failures_exit_1_naming_the_input(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "no_model"), str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hub-emo predict: error: cannot load model") and "no_model" in err[0]


def test_argparse_errors_and_unknown_commands_exit_2(capsys):
    assert main(["no-such-command"]) == USAGE_ERROR
    assert main(["predict"]) == USAGE_ERROR  # missing MODEL FILE
    assert main([]) == USAGE_ERROR
    assert main(["--version"]) == 0


def test_named():
    assert named(["a=x", "b=y=z"], "--m") == {"a": "x", "b": "y=z"}
    assert named(["x/y", "a=x/z"], "--m", default_name=lambda v: v.split("/")[-1]) == {"y": "x/y", "a": "x/z"}
    assert named(["/data=1", "crema_d=/c"], "--root", known=["crema_d"]) == {None: "/data=1", "crema_d": "/c"}
    for bad in (["x"], ["=x"], ["a="], ["a=1", "a=2"]):
        with pytest.raises(UsageError):
            named(bad, "--m")
