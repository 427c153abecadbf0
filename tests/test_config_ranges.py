"""Every config value, from flags and from checkpoints, is checked against the range its dataclass
field declares (:mod:`rnnkit.config`) before anything is built, and a bad one is one line that
names the field, the range and the value; flags that are not config fields are checked by
argparse types from :mod:`rnnkit.cli.options` (issue 14, items 6, 7 and 10)."""
import dataclasses
import math
import typing
from dataclasses import dataclass, field

import numpy as np
import pytest

from rnnkit.cli.main import main
from rnnkit.config import ConfigError, Range, check, problem
from rnnkit.layers.options import LayerOptions
from rnnkit.models import LMConfig
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.models.conditional import CondConfig
from rnnkit.models.forecaster import ForecasterConfig
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.models.tagger import TaggerConfig
from rnnkit.tasks.classify import ClassifyData
from rnnkit.tasks.cond import CondData
from rnnkit.tasks.forecast import ForecastData
from rnnkit.tasks.lm import LMData
from rnnkit.tasks.seq2seq import Seq2SeqData
from rnnkit.tasks.tag import TagData
from rnnkit.train import TrainConfig
from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint

from lm_fixtures import write_corpus
from seq2seq_fixtures import write_pairs
from task_fixtures import write_labelled, write_series, write_tagged

CONFIGS = [TrainConfig, LMConfig, ClassifierConfig, TaggerConfig, ForecasterConfig, Seq2SeqConfig,
           CondConfig, LMData, ClassifyData, TagData, ForecastData, Seq2SeqData, CondData,
           LayerOptions]
# paths, column names, labels
FREE_TEXT = {"data", "val_data", "test_data", "columns", "series_column", "classes"}
FAST = ["--max-steps", "2", "--eval-every", "1", "--warmup-steps", "0", "--quiet"]


# ---------------------------------------------------------------- the mechanism
@dataclass
class Toy:
    size: int = field(default=32, metadata={"help": "a size", "range": (1, 4096)})
    rate: float = field(default=0.5, metadata={"help": "a rate", "range": "(0, 1]"})
    drop: float = field(default=0.0, metadata={"range": "[0, 1)"})
    vocab: int = field(default=0, metadata={"help": "0: all", "range": (2, 10**7), "or": (0,)})
    kind: str = field(default="a", metadata={"help": "a or b", "choices": ("a", "b")})
    on: bool = True
    scale: float = field(default=math.inf, metadata={"finite": False})

    def __post_init__(self):
        check(self)


def refused(**kw):
    with pytest.raises(ConfigError) as e:
        Toy(**kw)
    message = str(e.value)
    assert len(message.splitlines()) == 1
    return message


def test_values_in_range_and_on_the_closed_bounds_are_accepted():
    for kw in [{}, {"size": 1}, {"size": 4096}, {"rate": 1.0}, {"rate": 1e-9}, {"drop": 0},
               {"vocab": 0}, {"vocab": 2}, {"vocab": 10**7}, {"kind": "b"}, {"on": False},
               {"size": np.int64(7)}, {"rate": np.float32(0.25)}, {"scale": -math.inf}]:
        Toy(**kw)


def test_each_bound_refused_with_field_range_value_and_flag():
    assert refused(size=0) == "Toy.size must be in [1, 4096], got 0 (--size)"
    assert refused(size=4097) == "Toy.size must be in [1, 4096], got 4097 (--size)"
    assert refused(size=-5) == "Toy.size must be in [1, 4096], got -5 (--size)"
    assert refused(rate=0.0) == "Toy.rate must be in (0, 1], got 0.0 (--rate)"
    assert refused(rate=1.5) == "Toy.rate must be in (0, 1], got 1.5 (--rate)"
    assert refused(drop=1.0) == "Toy.drop must be in [0, 1), got 1.0"   # no help: not a flag
    assert refused(vocab=1) == "Toy.vocab must be 0 or in [2, 1e7], got 1 (--vocab)"
    assert refused(kind="c") == "Toy.kind must be one of {a, b}, got 'c' (--kind)"


def test_nan_and_infinity_refused_unless_declared():
    assert refused(rate=math.nan) == "Toy.rate must be a finite number, got nan (--rate)"
    assert refused(rate=math.inf) == "Toy.rate must be a finite number, got inf (--rate)"
    assert "finite" in refused(drop=-math.inf)
    Toy(scale=math.nan)   # declared "finite": False


def test_wrong_types_refused():
    assert refused(size="abc") == "Toy.size must be an integer, got 'abc' (--size)"
    assert refused(size=3.0) == "Toy.size must be an integer, got 3.0 (--size)"
    assert refused(size=True) == "Toy.size must be an integer, got True (--size)"
    assert refused(size=None) == "Toy.size must be an integer, got None (--size)"
    assert refused(rate="0.5") == "Toy.rate must be a number, got '0.5' (--rate)"
    assert refused(kind=3) == "Toy.kind must be a string, got 3 (--kind)"
    assert refused(on=1) == "Toy.on must be true or false, got 1"


def test_replace_is_checked_too_and_config_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"Toy.size must be in \[1, 4096\], got 0"):
        dataclasses.replace(Toy(), size=0)


def test_range_notation():
    assert str(Range.of((1, 64))) == "in [1, 64]"
    assert str(Range.of("(0, 1]")) == "in (0, 1]"
    assert str(Range.of("[0, inf)")) == "in [0, inf)"
    assert str(Range.of((2, 10**7), also=(0,))) == "0 or in [2, 1e7]"
    assert 1 in Range.of("(0, 1]") and 0 not in Range.of("(0, 1]")
    assert 1 not in Range.of("[0, 1)") and 0 in Range.of("[0, 1)")


# ---------------------------------------------------------------- every config declares
@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_declares_what_it_takes_and_its_default_is_in_it(cls):
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind, meta = hints[f.name], f.metadata
        if kind in (int, float):
            assert "range" in meta or f.name == "zoneout", f"{cls.__name__}.{f.name}: no range"
        if kind is str and f.name not in FREE_TEXT:
            assert "choices" in meta, f"{cls.__name__}.{f.name}: no choices"
        if f.default is not dataclasses.MISSING:
            assert problem(kind, meta, f.default) is None, f"{cls.__name__}.{f.name} default"


@pytest.mark.parametrize("cls", [c for c in CONFIGS if c is not TrainConfig],
                         ids=lambda c: c.__name__)
def test_every_config_builds_with_its_defaults(cls):
    cls()


def test_train_config_defaults_need_a_limit():
    TrainConfig(max_steps=1)
    TrainConfig(max_minutes=0.5)
    with pytest.raises(ConfigError, match="set max_steps or max_minutes"):
        TrainConfig()


@pytest.mark.parametrize("cls,kw,message", [
    (LMConfig, {"hidden": 10**9}, "LMConfig.hidden must be in [1, 65536], got 1000000000"),
    (LMConfig, {"layers": 0}, "LMConfig.layers must be in [1, 64], got 0"),
    (LMConfig, {"vocab_size": 10**8}, "LMConfig.vocab_size must be in [0, 1e7]"),
    (TaggerConfig, {"num_tags": -1}, "TaggerConfig.num_tags must be in [0, 100000], got -1"),
    (ClassifierConfig, {"dropout": 1.0}, "ClassifierConfig.dropout must be in [0, 1), got 1.0"),
    (Seq2SeqConfig, {"attention": "luong"}, "attention must be one of {none, additive, dot"),
    (ForecasterConfig, {"features": 0}, "ForecasterConfig.features must be in [1, 100000]"),
    (CondConfig, {"max_len": 0}, "CondConfig.max_len must be in [1, 1e6], got 0"),
    (LayerOptions, {"recurrent_dropout": 1.0}, "LayerOptions.recurrent_dropout must be in [0, 1)"),
])
def test_model_configs_refuse_out_of_range_sizes(cls, kw, message):
    with pytest.raises(ConfigError) as e:
        cls(**kw)
    assert message in str(e.value)


def test_a_model_too_large_to_allocate_is_refused_by_its_sizes():
    with pytest.raises(ConfigError) as e:
        LMConfig(vocab_size=1_000_000, hidden=65_536, layers=4)
    assert "hidden 65536" in str(e.value) and "parameters, more than the 2,000,000,000" \
        in str(e.value)
    with pytest.raises(ConfigError, match="bag_buckets"):
        ClassifierConfig(vocab_size=10, num_classes=100_000, bag_buckets=10**7)
    with pytest.raises(ConfigError, match="parameters"):
        TaggerConfig(vocab_size=10, num_tags=100_000, crf=True)   # K x K transitions
    LMConfig(vocab_size=50_000, hidden=1024, layers=3)   # large, but fine
    ForecasterConfig(features=3, horizon=24, window=96, hidden=256)


# ---------------------------------------------------------------- flags (issue 14, item 7)
def one_line_error(capsys, argv):
    """``rnnkit argv`` exits 2 with one line on stderr, ``rnnkit: error: ...``: its text."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("rnnkit: error: "), err
    assert "Traceback" not in err
    return err.strip()


def task_args(tmp_path, task):
    out = str(tmp_path / "run")
    data = {"lm": write_corpus, "classify": write_labelled, "tag": write_tagged,
            "forecast": write_series, "seq2seq": write_pairs}[task](tmp_path)
    return ["train", task, "--data", str(data), "--out", out, *FAST]


@pytest.mark.parametrize("task,flags,message", [
    ("lm", ["--warmup-steps", "-1"], "TrainConfig.warmup_steps must be in [0, 1e12], got -1 "
                                     "(--warmup-steps)"),
    ("lm", ["--min-lr-ratio", "-0.5"], "TrainConfig.min_lr_ratio must be in [0, 1], got -0.5"),
    ("lm", ["--min-lr-ratio", "2"], "TrainConfig.min_lr_ratio must be in [0, 1], got 2.0"),
    ("lm", ["--lr", "-1"], "TrainConfig.lr must be in (0, 10], got -1.0 (--lr)"),
    ("lm", ["--lr", "nan"], "TrainConfig.lr must be a finite number, got nan (--lr)"),
    ("lm", ["--weight-decay", "-1"], "TrainConfig.weight_decay must be in [0, 10], got -1.0"),
    ("lm", ["--clip", "inf"], "TrainConfig.clip must be a finite number, got inf"),
    ("lm", ["--batch", "0"], "LMData.batch must be in [1, 65536], got 0 (--batch)"),
    ("lm", ["--seq-len", "0"], "LMData.seq_len must be in [1, 1e6], got 0 (--seq-len)"),
    ("lm", ["--eval-tokens", "-1"], "LMData.eval_tokens must be in [0, 1e12], got -1"),
    ("lm", ["--hidden", "1000000000"], "LMConfig.hidden must be in [1, 65536], got 1000000000"),
    ("lm", ["--hidden", "-5"], "LMConfig.hidden must be in [1, 65536], got -5"),
    ("lm", ["--dropout", "1.5"], "LMConfig.dropout must be in [0, 1), got 1.5"),
    ("classify", ["--test-fraction", "-1"], "ClassifyData.test_fraction must be in (0, 1), "
                                            "got -1.0 (--test-fraction)"),
    ("classify", ["--word-dropout", "1.5"], "ClassifyData.word_dropout must be in [0, 1), got 1.5"),
    ("classify", ["--test-fraction", "0.5", "--val-fraction", "0.5"],
     "ClassifyData.test_fraction + val_fraction must be below 1"),
    ("tag", ["--column", "-1"], "TagData.column must be in [0, 9], got -1 (--column)"),
    ("forecast", ["--season", "-3"], "ForecastData.season must be in [0, 1e6], got -3"),
    ("forecast", ["--window", "-1"], "ForecastData.window must be 0 or in [1, 1e6], got -1"),
    ("seq2seq", ["--beam-size", "0"], "Seq2SeqData.beam_size must be in [1, 1000], got 0"),
    ("seq2seq", ["--teacher-forcing", "1.5"], "Seq2SeqData.teacher_forcing must be in [0, 1]"),
])
def test_config_flags_out_of_range_are_one_line_errors(tmp_path, capsys, task, flags, message):
    assert message in one_line_error(capsys, task_args(tmp_path, task) + flags)
    assert not (tmp_path / "run" / "last.pt").exists()   # refused before training


def argparse_error(capsys, argv):
    """``rnnkit argv`` refused by argparse: exit 2, its usage, then one ``error:`` line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and sum("error:" in line for line in err.splitlines()) == 1
    return err.strip().splitlines()[-1]


@pytest.mark.parametrize("argv,message", [
    (["sample", "RUN", "--top-p", "1.5"], "argument --top-p: must be in (0, 1], got 1.5"),
    (["sample", "RUN", "--top-p", "0"], "argument --top-p: must be in (0, 1], got 0"),
    (["sample", "RUN", "--top-k", "0"], "argument --top-k: must be in [1, 1e12], got 0"),
    (["sample", "RUN", "-n", "0"], "argument -n: must be in [1, 1e6], got 0"),
    (["sample", "RUN", "--beam", "-2"], "argument --beam: must be in [1, 1000], got -2"),
    (["sample", "RUN", "--temperature", "-1"], "argument --temperature: must be in [0, inf), "
                                               "got -1"),
    (["sample", "RUN", "--temperature", "nan"], "argument --temperature: expected a finite "
                                                "number, got 'nan'"),
    (["sample", "RUN", "--length", "0"], "argument --length: must be in [1, 1e6], got 0"),
    (["sample", "RUN", "--seed", "-1"], "argument --seed: must be in [0, 4294967295], got -1"),
    (["forecast", "RUN", "--steps", "100000"], "argument --steps: must be in [1, 10000], "
                                               "got 100000"),
    (["forecast", "RUN", "--steps", "0"], "argument --steps: must be in [1, 10000], got 0"),
    (["translate", "RUN", "--beam-size", "0"], "argument --beam-size: must be in [1, 1000]"),
    (["translate", "RUN", "--length-penalty", "nan"], "argument --length-penalty: expected a "
                                                      "finite number"),
    (["eval", "RUN", "FILE", "--beam-size", "-2"], "argument --beam-size: must be in [1, 1000]"),
    (["demo", "--minutes", "0"], "argument --minutes: must be in (0, 1e7], got 0"),
    (["gradflow", "--lags", "10", "2"], "argument --lags: must be in [3, 1e6], got 2"),
    (["gradflow", "--threads", "0"], "argument --threads: must be in [1, 1024], got 0"),
    (["gradflow", "--lr", "-1"], "argument --lr: must be in (0, inf), got -1"),
    (["train", "lm", "--out", "x", "--layers", "two"], "argument --layers: invalid int value"),
])
def test_other_flags_refused_by_argparse(capsys, argv, message):
    assert message in argparse_error(capsys, argv)


# ---------------------------------------------------------------- checkpoints (issue 14, item 6)
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny language model, classifier and tagger, trained for two steps."""
    tmp = tmp_path_factory.mktemp("runs")
    made = {}
    for task, extra in [("lm", ["--seq-len", "16", "--batch", "4", "--layers", "1", "--hidden",
                                "16", "--embed", "8"]),
                        ("classify", ["--hidden", "8", "--embed", "8", "--batch", "8"]),
                        ("tag", ["--hidden", "8", "--embed", "8", "--char-embed", "4",
                                 "--char-hidden", "4", "--min-count", "1"])]:
        folder = tmp / task
        folder.mkdir()
        argv = task_args(folder, task)
        assert main(argv + extra) == 0
        made[task] = folder / "run"
    return made


def damaged(run, where, **model_config):
    """A copy of ``run``'s best.pt as ``where``/last.pt and best.pt, its model config changed."""
    ckpt = load_checkpoint(run / "best.pt")
    ckpt["model_config"] = {**ckpt["model_config"], **model_config}
    where.mkdir(parents=True, exist_ok=True)
    for name in ("best.pt", "last.pt"):
        save_checkpoint(where / name, ckpt)
    return where


@pytest.mark.parametrize("hidden", [10**9, -5, "abc", 2.5, None])
def test_a_checkpoint_with_an_absurd_size_is_refused_before_allocating(runs, tmp_path, capsys,
                                                                       hidden):
    bad = damaged(runs["lm"], tmp_path / "bad", hidden=hidden)
    for argv in (["sample", str(bad), "--length", "5"],
                 ["train", "lm", "--out", str(bad), "--resume", "--quiet"]):
        err = one_line_error(capsys, argv)
        assert "hidden" in err and str(hidden) in err


def test_a_classifier_checkpoint_with_absurd_classes_is_refused(runs, tmp_path, capsys):
    bad = damaged(runs["classify"], tmp_path / "bad", num_classes=10**9)
    assert "num_classes" in one_line_error(capsys, ["predict", str(bad), "a good film"])


# ---------------------------------------------------------------- predict/tag --file
@pytest.mark.parametrize("command,task", [("predict", "classify"), ("tag", "tag")])
def test_unreadable_text_files_are_data_errors_naming_them(runs, tmp_path, capsys, command,
                                                            task):
    run = str(runs[task])
    missing = tmp_path / "missing.txt"
    assert str(missing) in one_line_error(capsys, [command, run, "--file", str(missing)])
    assert str(tmp_path) in one_line_error(capsys, [command, run, "--file", str(tmp_path)])
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("the cat\nle caf\u00e9 sat\n".encode("latin-1"))
    assert f"{latin}:2: not UTF-8" in one_line_error(capsys, [command, run, "--file", str(latin)])


def output_on_file(capsys, argv, path, text):
    """The output lines of ``rnnkit argv --file path``, ``text`` written to ``path`` first."""
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(argv + ["--file", str(path)]) == 0
    return capsys.readouterr().out.splitlines()


def test_tag_file_keeps_a_line_for_each_line(runs, tmp_path, capsys):
    out = output_on_file(capsys, ["tag", str(runs["tag"])], tmp_path / "in.txt",
                         "the cat sat\n\na dog ran\n\n")
    assert len(out) == 4 and out[1] == out[3] == "" and out[0].startswith("the/") \
        and "dog/" in out[2]


def test_predict_file_passes_over_blank_lines(runs, tmp_path, capsys):
    f = tmp_path / "in.txt"
    out = output_on_file(capsys, ["predict", str(runs["classify"])], f,
                         "a good film\n\n  \na bad film\n")
    assert [line.split("\t")[-1] for line in out] == ["a good film", "a bad film"]
    f.write_text("\n \n", encoding="utf-8")
    assert "the file is empty" in one_line_error(capsys, ["predict", str(runs["classify"]),
                                                              "--file", str(f)])


def test_texts_may_follow_the_options(runs, capsys):
    """`predict RUN --json "a good film"` reads as `predict RUN "a good film" --json`; an
    unknown option is still refused."""
    run = str(runs["classify"])
    assert main(["predict", run, "a good film", "--json"]) == 0
    first = capsys.readouterr().out
    assert main(["predict", run, "--json", "a good film"]) == 0
    assert capsys.readouterr().out == first and first.startswith("{")
    with pytest.raises(SystemExit):
        main(["predict", run, "--bogus", "a good film"])
    assert "rnnkit predict: error: unrecognized arguments: --bogus" in capsys.readouterr().err



def test_char_tags_on_a_word_tagger_is_refused(runs, capsys):
    err = one_line_error(capsys, ["tag", str(runs["tag"]), "--char-tags", "the cat"])
    assert "--char-tags prints a word segmenter's tag for each character" in err


@pytest.mark.parametrize("argv", [["-"], ["--file", "-"]], ids=["text", "file"])
def test_a_dash_reads_standard_input(runs, capsys, monkeypatch, argv):
    import io
    for command, task in (("predict", "classify"), ("tag", "tag")):
        monkeypatch.setattr("sys.stdin", io.StringIO("a good film\na bad film\n"))
        assert main([command, str(runs[task]), *argv]) == 0
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 2 and "good" in out[0] and "bad" in out[1], out


def test_numpy_numbers_become_plain_ones():
    """A rate from np.logspace was kept as a numpy scalar: the run's checkpoints, which hold
    plain data only, could then never be loaded (and float32 broke metrics.json)."""
    import numpy as np
    from rnnkit.models import LMConfig
    from rnnkit.train import TrainConfig
    c = TrainConfig(lr=np.logspace(-3, -2, 3)[1], max_steps=np.int64(2))
    assert type(c.lr) is float and type(c.max_steps) is int
    assert type(TrainConfig(lr=np.float32(0.01), max_steps=1).lr) is float
    assert type(LMConfig(hidden=np.int64(8)).hidden) is int
    assert type(LMConfig(cell=np.array(["gru", "lstm"])[0]).cell) is str
