"""The layers under the global states a PyTorch user sets (a default device of meta, autocast,
inference mode) and the task models after rnnkit.to_torch: each as torch.nn's layers behave."""
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnkit
from rnnkit.decode import sample
from rnnkit.layers.errors import InputError, InputTypeError


def test_a_default_device_of_meta_leaves_cpu_layers_as_torch_nn():
    """Internal index tensors were made on the default device: the kernels' first use turned
    them off for the process, a later forward was a kernel TypeError, lengths= torch's
    NotImplementedError (torch.nn.LSTM gives the CPU result)."""
    torch.manual_seed(0)
    x, lengths = torch.randn(12, 4, 6), torch.tensor([12, 3, 7, 1])
    for layer in (rnnkit.LSTM(6, 5), rnnkit.GRU(6, 5, bidirectional=True)):
        want, want_l = layer(x)[0], layer(x, lengths=lengths)[0]
        with torch.device("meta"):
            got, got_l = layer(x)[0], layer(x, lengths=lengths)[0]
            got_list = layer(x, lengths=lengths.tolist())[0]
        assert got.device.type == "cpu"
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        torch.testing.assert_close(got_l, want_l, rtol=0, atol=0)
        torch.testing.assert_close(got_list, want_l, rtol=0, atol=0)


def test_the_kernels_first_use_under_a_default_device_of_meta():
    code = """
        import torch, rnnkit, warnings
        warnings.simplefilter("error")
        r, x = rnnkit.LSTM(8, 6), torch.randn(5, 2, 8)
        with torch.device("meta"):
            r(x)
        print(rnnkit.kernels.available())
    """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env={**os.environ, "RNNKIT_KERNELS": "1"}, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == str(rnnkit.kernels.available()), r.stderr


def test_backward_on_meta_as_torch_nn():   # a dry run of shapes: "unsupported scalarType"
    with torch.device("meta"):
        layer, cell = rnnkit.LSTM(4, 6), rnnkit.GRUCell(4, 6)
    x = torch.randn(5, 3, 4, device="meta", requires_grad=True)
    layer(x)[0].sum().backward()
    cell(x[0]).sum().backward()
    assert x.grad.shape == (5, 3, 4) and x.grad.device.type == "meta"


def test_autocast_refuses_ids_as_outside_it():
    ids = torch.randint(0, 9, (5, 3, 4))        # an embedding forgotten: was run as floats
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for bad in (ids, ids > 3):
            with pytest.raises(InputTypeError, match="input dtype must match the weights' "
                                                     "torch.float32, got torch.(int64|bool)"):
                rnnkit.LSTM(4, 6)(bad)
        packed = pack_padded_sequence(torch.randn(5, 3, 4), [5, 4, 2])
        assert rnnkit.LSTM(4, 6)(packed)[0].data.dtype == torch.float32


def test_a_language_model_made_in_inference_mode_samples():
    from rnnkit.models.language_model import LanguageModel, LMConfig
    with torch.inference_mode():   # "Inference tensors do not track version counter"
        lm = LanguageModel(LMConfig(vocab_size=20, hidden=16, layers=2, embed=8)).eval()
        assert len(list(sample(lm, torch.tensor([[1, 2, 3]]), 5))) == 5
        assert lm.step(torch.tensor([1]), lm.init_state(1))[0].shape == (1, 20)


def test_a_wrong_input_size_names_the_shape_given():
    layer, x = rnnkit.LSTM(4, 6, batch_first=True), torch.randn(2, 7, 5)
    for kw in ({}, {"lengths": torch.tensor([7, 3])}):   # was (7, 2, 5) and (10, 5)
        with pytest.raises(InputError, match=r"got 5 \(input shape \(2, 7, 5\)\)"):
            layer(x, **kw)


def _tagger_inputs(g, B=3, T=6, W=4):
    lengths = torch.tensor([T, 2, 4])
    char_lengths = torch.randint(1, W + 1, (B, T), generator=g)
    char_lengths[torch.arange(T)[None] >= lengths[:, None]] = 0
    chars = torch.randint(1, 7, (B, T, W), generator=g)
    chars[torch.arange(W)[None, None] >= char_lengths[..., None]] = 0
    return torch.randint(1, 9, (B, T), generator=g), lengths, chars, char_lengths


def test_task_models_after_to_torch_run_their_lengths():
    """Their layers are called with rnnkit's lengths=, which torch.nn's lack: the copy failed
    with "unexpected keyword argument 'lengths'"."""
    from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
    from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
    from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
    from rnnkit.models.tagger import SequenceTagger, TaggerConfig
    g = torch.Generator().manual_seed(0)
    clf = SequenceClassifier(ClassifierConfig(vocab_size=30, num_classes=3, hidden=8, embed=8,
                                              ngrams=1, char_grams=0, bag="off"))
    tagger = SequenceTagger(TaggerConfig(vocab_size=9, num_tags=4, cell="gru", layers=1,
                                         hidden=5, embed=4, char_vocab_size=7, char_embed=3,
                                         char_hidden=4, ngrams=1, window=0, affixes=0))
    s2s = Seq2Seq(Seq2SeqConfig(src_vocab=9, tgt_vocab=9, embed=8, enc_hidden=8, hidden=8))
    rec = SequenceRecognizer(RecognizerConfig(num_classes=5, features=16, conv_layers=2,
                                              channels=4, time_stride=2, layers=1, hidden=8,
                                              dropout=0.0))
    cases = [(clf, (torch.randint(1, 30, (3, 7), generator=g), torch.tensor([7, 3, 5]))),
             (tagger, _tagger_inputs(g)),
             (s2s, (torch.tensor([[3, 4, 5], [4, 5, 0]]), torch.tensor([3, 2]),
                    torch.tensor([[1, 3], [1, 4]]))),
             (rec, (torch.randn(2, 16, 20, generator=g), torch.tensor([20, 11])))]
    for model, args in cases:
        model.eval()
        copy = rnnkit.to_torch(model)
        assert any(isinstance(m, torch.nn.RNNBase) for m in copy.modules())
        with torch.no_grad():
            want, got = model(*args), copy(*args)
        want, got = (want[0], got[0]) if isinstance(want, tuple) else (want, got)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_generators_after_to_torch_start_and_sample_as_rnnkit(cell):
    """Their zero or conditioned state came from rnnkit's initial_state, which torch.nn's
    layers lack: init_state, condition and so sample failed with an AttributeError."""
    from rnnkit.decode import beam_search
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    from rnnkit.models.language_model import LanguageModel, LMConfig
    torch.manual_seed(0)
    lm = LanguageModel(LMConfig(vocab_size=40, cell=cell, layers=2, hidden=12, embed=8)).eval()
    gen = ConditionalGenerator(CondConfig(vocab_size=20, n_classes=3, cell=cell, layers=2,
                                          hidden=12, embed=8, cond_size=4)).eval()
    for model, state in [(lm, lambda m: None),
                         (gen, lambda m: m.condition(torch.tensor([2])))]:
        copy = rnnkit.to_torch(model).eval()
        assert isinstance(copy.rnn, torch.nn.RNNBase)
        runs = [list(sample(m, torch.tensor([3, 4]), 12, 1.0, seed=3, state=state(m)))
                for m in (model, copy)]
        assert torch.equal(torch.stack(runs[0]), torch.stack(runs[1]))
        want, got = (beam_search(m, torch.tensor([3]), beam_size=3, max_len=6, state=state(m))
                     for m in (model, copy))
        assert want == got
