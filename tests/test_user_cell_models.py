"""Cells of one's own in the task models: a registered cell trains in each, a cell whose states
a model cannot read is refused, and a checkpoint says when its cell has changed."""
import pytest
import torch

import rnnkit
from rnnkit.cells import registry
from rnnkit.config import ConfigError

from test_user_cells import Leaky


@pytest.mark.parametrize("cell", ["peephole-lstm", "indrnn", "mgu"])
def test_a_task_model_takes_a_registered_cell(cell):
    from rnnkit.models.language_model import LanguageModel, LMConfig
    model = LanguageModel(LMConfig(vocab_size=7, cell=cell, layers=2, hidden=8, embed=4))
    assert isinstance(model.rnn, rnnkit.Recurrent)
    logits, _ = model(torch.randint(0, 7, (2, 5)))
    assert logits.shape == (2, 5, 7)
    with pytest.raises(ConfigError, match="cell must be one of"):
        LMConfig(cell="nope")


@pytest.mark.parametrize("cell", ["peephole-lstm", "mgu"])
def test_seq2seq_and_the_conditional_generator_take_a_registered_cell(cell):
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    model = Seq2Seq(Seq2SeqConfig(src_vocab=12, tgt_vocab=9, embed=6, enc_hidden=5, hidden=10,
                                  cell=cell, bidirectional=True))
    src, lengths = torch.randint(4, 12, (3, 6)), torch.tensor([6, 2, 4])
    tgt = torch.randint(3, 9, (3, 5))
    assert model(src, lengths, tgt).shape == (3, 5, 9)
    assert (model.bridge_c is not None) == (cell == "peephole-lstm")
    gen = ConditionalGenerator(CondConfig(vocab_size=6, n_classes=3, cell=cell))
    logits, _ = gen.step(torch.tensor([1, 2]), gen.condition(torch.tensor([0, 2])))
    assert logits.shape == (2, 6)


def test_the_gradient_lab_takes_a_registered_cell():
    from rnnkit.diagnostics.experiments import RunConfig, grid, PRESETS, run, valid
    r = run(RunConfig(task="adding", lag=6, cell="indrnn", hidden=4, batch=4, steps=2,
                      eval_every=1, test_size=8))
    assert len(r["profile_init"]["h"]) == 6 and r["steps_run"] == 2
    assert not valid("indrnn", "orthogonal") and valid("mgu", "orthogonal")
    full = PRESETS["full"]
    runs = grid(full.__class__(cells=("indrnn",), inits=full.inits), ["adding"], [5])
    assert {(c.cell, c.init) for c in runs} == {("indrnn", "default")}     # no orthogonal vector


class _LeakyS(Leaky):
    STATES = ("s",)                 # its one state named otherwise: still the output


def test_the_gradient_lab_reads_a_first_state_of_any_name():
    """The lab read its profile under "h": KeyError after the training, the run lost."""
    from rnnkit.diagnostics.experiments import RunConfig, run
    registry.register("test-leaky-s", _LeakyS)
    r = run(RunConfig(task="adding", lag=6, cell="test-leaky-s", hidden=4, batch=4, steps=2,
                      eval_every=1, test_size=8))
    assert len(r["profile_final"]["h"]) == 6 and r["decay_init"] > 0
    registry.register("test-leaky-sh", _TwoStates)
    p = run(RunConfig(task="adding", lag=6, cell="test-leaky-sh", hidden=4, batch=4, steps=1,
                      eval_every=1, test_size=8))["profile_init"]
    assert set(p) == {"h", "h (state 2)"} and p["h"] != p["h (state 2)"]   # each its own


class _TwoStates(Leaky):
    """Its output named y, a second state named h (half the output): the second's profile
    took the output's place."""
    STATES = ("y", "h")

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        super().forward_step(gi, prev, hrec, w_hh_t, b_hh, cache, out, params)
        out[1].copy_(out[0] * 0.5)

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        y = super().reference_step(gi, state, w_hh, b_hh, hrec, params)[0]
        return (y, y * 0.5)


class _Scaled(Leaky):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale


def test_a_cell_registered_with_another_tensor_is_another_cell():
    """Its fingerprint named a tensor attribute by its type: a checkpoint trained with one
    scale loaded under another without a word."""
    from rnnkit.cells.registry import source_digests
    digests = []
    for scale in (torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]), torch.tensor(2.0),
                  torch.tensor([True, False])):
        registry.register("test-scaled", _Scaled(scale))
        digests.append(source_digests({"cell": "test-scaled"})["test-scaled"])
    assert len(set(digests)) == 4
    registry.register("test-scaled", _Scaled(torch.tensor([1.0, 2.0])))
    assert source_digests({"cell": "test-scaled"})["test-scaled"] == digests[0]


class _LeakyEdited(Leaky):
    """The same cell after an edit that keeps its parameters' shapes."""

    def init_parameter(self, name, weight, hidden_size):
        weight.fill_(0.25) if name == "leak" else super().init_parameter(name, weight, hidden_size)


def test_a_checkpoint_says_when_its_cell_of_ones_own_has_changed(tmp_path, recwarn):
    from lm_fixtures import write_corpus
    from rnnkit.cli.main import main
    from rnnkit.train import load_checkpoint
    registry.register("test-leaky-edited", Leaky)
    out = tmp_path / "run"
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--layers", "1",
                 "--hidden", "8", "--seq-len", "5", "--batch", "4", "--max-steps", "2",
                 "--quiet", "--out", str(out), "--cell", "test-leaky-edited"]) == 0
    ckpt = load_checkpoint(out)
    assert set(ckpt["cell_sources"]) == {"test-leaky-edited"}
    assert not [w for w in recwarn if "has changed" in str(w.message)]
    registry.register("test-leaky-edited", _LeakyEdited)
    load_checkpoint(out)
    assert any("the cell 'test-leaky-edited' has changed since this checkpoint was written"
               in str(w.message) for w in recwarn)
    recwarn.clear()                      # eval and sample said it twice (two loads): once
    assert main(["eval", str(out), str(write_corpus(tmp_path))]) == 0
    assert main(["sample", str(out), "--length", "3"]) == 0
    assert sum("has changed" in str(w.message) for w in recwarn) == 2
    assert "cell_sources" not in load_checkpoint(_builtin_run(tmp_path))


def _builtin_run(tmp_path):
    from lm_fixtures import write_corpus
    from rnnkit.cli.main import main
    out = tmp_path / "builtin"
    assert main(["train", "lm", "--data", str(write_corpus(tmp_path)), "--layers", "1",
                 "--hidden", "8", "--seq-len", "5", "--batch", "4", "--max-steps", "2",
                 "--quiet", "--out", str(out)]) == 0
    return out


class _ThreeStates(Leaky):
    STATES = ("h", "c", "m")        # built, never trained: the seq2seq model refuses it first

    def forward_step(self, gi, prev, hrec, w_hh_t, b_hh, cache, out, params):
        super().forward_step(gi, prev, hrec, w_hh_t, b_hh, cache, out, params)
        out[1].copy_(out[0])
        out[2].copy_(out[0])

    def reference_step(self, gi, state, w_hh, b_hh, hrec=None, params=()):
        h = super().reference_step(gi, state, w_hh, b_hh, hrec, params)[0]
        return (h, h, h)


def test_task_models_refuse_a_cell_whose_states_they_cannot_read():
    """A cell of one's own may declare states narrower than the hidden size (as LSTMP's h) or
    more than two: the task models read each state as --hidden wide and seq2seq carries h and c
    from encoder to decoder, so such a cell is a one-line ConfigError, not a shape error deep in
    the first step."""
    from rnnkit.cells.lstm_proj import ProjectedLSTMMath
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    from rnnkit.models.forecaster import ForecasterConfig, Forecaster
    from rnnkit.models.language_model import LanguageModel, LMConfig
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    registry.register("test-narrow-h", ProjectedLSTMMath(proj_size=3))
    registry.register("test-three", _ThreeStates)
    builds = [lambda cell: LanguageModel(LMConfig(vocab_size=7, cell=cell, hidden=8, embed=4)),
              lambda cell: SequenceClassifier(ClassifierConfig(vocab_size=7, num_classes=2,
                                                               cell=cell, hidden=8, embed=4)),
              lambda cell: Forecaster(ForecasterConfig(cell=cell, hidden=8)),
              lambda cell: ConditionalGenerator(CondConfig(vocab_size=6, n_classes=3,
                                                           cell=cell, hidden=8)),
              lambda cell: Seq2Seq(Seq2SeqConfig(src_vocab=12, tgt_vocab=9, embed=6,
                                                 enc_hidden=8, hidden=8, cell=cell))]
    for build in builds:
        with pytest.raises(ConfigError, match=r"--cell test-narrow-h: the .* reads each "
                                              r"state as the hidden size \(8\) wide; the "
                                              r"cell's states are h 3, c 8 wide"):
            build("test-narrow-h")
    with pytest.raises(ConfigError, match=r"--cell test-three: the seq2seq encoder carries "
                                          r"at most 2 states \(h, c\); the cell has 3"):
        builds[-1]("test-three")
    assert builds[0]("test-three").rnn.state_sizes == (8, 8, 8)


class _Act(Leaky):
    def __init__(self, act="tanh"):
        self.act = act


def test_a_cells_fingerprint_covers_its_base_classes_and_arguments(tmp_path, monkeypatch):
    """An edit of a base class of one's own, or the same class registered with other
    arguments, is another cell: a checkpoint of it says the cell has changed."""
    import importlib
    registry.register("test-act", _Act("tanh"))
    recorded = registry.source_digests({"cell": "test-act"})
    registry.register("test-act", _Act("tanh"))
    assert registry.changed_cells(recorded) == []
    registry.register("test-act", _Act("sigmoid"))
    assert registry.changed_cells(recorded) == ["test-act"]
    monkeypatch.syspath_prepend(str(tmp_path))
    base = tmp_path / "fp_base_cell.py"
    base.write_text("import torch\nfrom test_user_cells import Leaky\n\n\n"
                    "class Base(Leaky):\n    SCALE = 1.0\n")
    (tmp_path / "fp_own_cell.py").write_text("from fp_base_cell import Base\n\n\n"
                                             "class Own(Base):\n    pass\n")
    import fp_own_cell
    registry.register("test-own", fp_own_cell.Own)
    recorded = registry.source_digests({"cell": "test-own"})
    base.write_text(base.read_text().replace("SCALE = 1.0", "SCALE = 2.0"))
    importlib.reload(importlib.import_module("fp_base_cell"))
    registry.register("test-own", importlib.reload(fp_own_cell).Own)
    assert registry.changed_cells(recorded) == ["test-own"]


def test_a_cells_fingerprint_names_a_function_argument_by_its_name():
    """A registered instance holding a function: its repr has an address, which changes from
    process to process, so every load said the cell had changed."""
    def make():
        def soft(x):
            return x
        return soft
    one, two = _Act(make()), _Act(make())
    assert one.act is not two.act and repr(one.act) != repr(two.act)
    assert registry._source_digest(one) == registry._source_digest(two)
    assert registry._source_digest(one) != registry._source_digest(_Act("tanh"))
