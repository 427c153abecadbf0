"""The tagger's linear start: its linear term and CRF fitted alone by L-BFGS (rnnkit.models.crf_fit),
validated at step 0 and mixed with the network at every evaluation."""
import json

import pytest
import torch

from rnnkit.models import crf_fit
from rnnkit.models.crf import CRF, ChainNLL, chain_nll
from rnnkit.tasks.common import train
from rnnkit.models.crf_fit import blended_state, linear_emissions
from rnnkit.tasks.tag_trained import Tagger
from rnnkit.train import TrainConfig
from rnnkit.train.checkpoint import load_checkpoint

from task_fixtures import tag_task


def reference_nll(crf, E, y, mask):
    """The CRF's negative log-likelihood by autograd through its forward algorithm."""
    return (crf.log_partition(E, mask) - crf.score(E, y, mask)).sum()


def random_crf(K, dtype=torch.float64):
    crf = CRF(K).to(dtype)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    return crf


def test_the_written_out_gradient_is_autograds(lengths=(1, 3, 5, 7, 7)):
    torch.manual_seed(0)
    B, T, K = len(lengths), max(lengths), 4
    E = (torch.randn(B, T, K, dtype=torch.float64) * 3).requires_grad_()
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    y = torch.randint(0, K, (B, T)) * mask
    crf = random_crf(K)
    ref = reference_nll(crf, E, y, mask)
    ref.backward()
    loss, dE, dtrans, dstart, dend = chain_nll(
        E.detach(), crf.trans.detach(), crf.start.detach(), crf.end.detach(), y, mask)
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    for ours, theirs in ((dE, E.grad), (dtrans, crf.trans.grad), (dstart, crf.start.grad),
                         (dend, crf.end.grad)):
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_crf_layer_trains_by_the_written_out_gradient(dtype, lengths=(4, 1, 6, 3, 6)):
    """CRF.nll's gradient (rows in any order) is autograd's through the forward algorithm, in
    float32 too, and its loss is the same; without a gradient it takes the forward algorithm."""
    torch.manual_seed(1)
    B, T, K = len(lengths), max(lengths), 5
    E = (torch.randn(B, T, K, dtype=dtype) * 3).requires_grad_()
    mask = torch.arange(T)[None] < torch.tensor(lengths)[:, None]
    y = torch.randint(0, K, (B, T)) * mask
    crf = random_crf(K, dtype)
    ref = reference_nll(crf, E, y, mask)
    ref_grads = torch.autograd.grad(ref, [E, *crf.parameters()])
    loss = crf.nll(E, y, mask)
    assert isinstance(loss.grad_fn, type(ChainNLL.apply(
        E, crf.trans, crf.start, crf.end, y, mask).grad_fn))
    grads = torch.autograd.grad(2 * loss, [E, *crf.parameters()])
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(loss, ref, **tol)
    for ours, theirs in zip(grads, ref_grads):
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, 2 * theirs, **tol)
    with torch.no_grad():
        torch.testing.assert_close(crf.nll(E, y, mask), ref.detach(), **tol)


@pytest.mark.parametrize("mask", [[[True, False, True], [True, True, True]],
                                  [[False, False, False], [True, True, True]]])
def test_a_mask_that_is_not_a_prefix_is_refused(mask):
    E = torch.zeros(2, 3, 4, requires_grad=True)
    with pytest.raises(ValueError, match="non-empty prefix"):
        CRF(4).nll(E, torch.zeros(2, 3, dtype=torch.long), torch.tensor(mask))


def test_the_crf_layer_passes_gradcheck():
    torch.manual_seed(2)
    E = torch.randn(3, 4, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True] * 4, [True, True, False, False], [True] * 3 + [False]])
    y = torch.randint(0, 3, (3, 4)) * mask
    crf = random_crf(3)
    assert torch.autograd.gradcheck(lambda e, a, s, t: ChainNLL.apply(e, a, s, t, y, mask),
                                    (E, *[p.detach().requires_grad_() for p in crf.parameters()]))


def test_rows_out_of_length_order_are_refused():
    E = torch.zeros(2, 3, 4, dtype=torch.float64)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    zeros = torch.zeros(4, dtype=torch.float64)
    with pytest.raises(ValueError, match="sorted by length"):
        chain_nll(E, torch.zeros(4, 4, dtype=torch.float64), zeros, zeros,
                          torch.zeros(2, 3, dtype=torch.long), mask)


def test_validation_decodes_the_mix_it_validated(tmp_path):
    """The accuracy an evaluation reports is the mixed model's, as best.pt keeps it."""
    task = tag_task(tmp_path)
    task.before_training(log=lambda *a: None)
    torch.manual_seed(2)
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    task.model.eval()
    metrics = task.evaluate()
    task.model.load_state_dict(task.best_model_state() or task.model.state_dict())
    _, gold, pred = task.scores(task.val)
    assert metrics["val_accuracy"] == pytest.approx(sum(g == p for g, p in zip(gold, pred))
                                                    / len(gold))


def test_the_fit_is_the_penalised_optimum_and_validated(tmp_path, monkeypatch):
    monkeypatch.setattr(crf_fit, "LAMBDAS", (1e-2, 1e-3))   # (the tiny fixture's scale)
    task = tag_task(tmp_path)
    train_part = task.linear_features(task.train)
    logs = []
    columns, U, trans, start, end, lam, val_loss = crf_fit.fit(
        train_part, task.linear_features(task.val), len(task.tags), log=logs.append)
    assert lam in (1e-2, 1e-3) and len(logs) >= 1 and "validation loss" in logs[0]
    # at the optimum the gradient of the penalised objective vanishes
    feats = train_part[0]
    table = torch.cat([U.new_zeros(1, U.shape[1]), U]).requires_grad_()
    rows = torch.searchsorted(columns, feats).clamp(max=len(columns) - 1)
    rows = torch.where(columns[rows] == feats, rows + 1, 0)
    E = torch.nn.functional.embedding_bag(rows, table, mode="sum", padding_idx=0)
    sentences = crf_fit.Sentences(train_part[1], train_part[2], len(task.tags))
    loss, dE, dtrans, dstart, dend = crf_fit.objective(E.detach(), sentences, trans, start, end)
    E.backward(dE)
    grad = table.grad[1:] + lam * U
    assert float(grad.abs().max()) < 1e-4
    assert float(dtrans.abs().max()) < 1e-4 and float(dstart.abs().max()) < 1e-4
    # and the validation loss it reports is the linear model's on the validation part
    val = task.linear_features(task.val)
    Ev = linear_emissions({"columns": columns, "window": U}, val[0])
    got = crf_fit.objective(Ev, crf_fit.Sentences(val[1], val[2], len(task.tags)),
                            trans, start, end)[0]
    assert got == pytest.approx(val_loss)


def test_a_mix_is_the_mixed_scores_within_the_same_model(tmp_path):
    task = tag_task(tmp_path)
    task.before_training(log=lambda *a: None)
    linear = task.linear
    torch.manual_seed(1)
    with torch.no_grad():
        for p in task.model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    task.model.eval()
    batch = task.make_batch(task.val)
    x, lengths, _, chars, char_lengths, grams = batch
    net = task.model(x, lengths, chars, char_lengths, grams)
    net_crf = [p.detach().clone() for p in (task.model.crf.trans, task.model.crf.start,
                                            task.model.crf.end)]
    state = blended_state(task.model, linear, 0.3)
    task.model.load_state_dict(state)
    mixed = task.model(x, lengths, chars, char_lengths, grams)
    feats = grams[..., task.model.config.gram_slots:]
    lin = linear_emissions(linear, feats.reshape(-1, feats.shape[-1]).long())
    lin = lin.reshape(*feats.shape[:2], -1).float()
    mask = torch.arange(x.shape[1])[None] < lengths[:, None]
    torch.testing.assert_close(mixed[mask], (0.3 * lin + 0.7 * net)[mask], rtol=1e-4, atol=1e-5)
    for p, ours, name in zip((task.model.crf.trans, task.model.crf.start, task.model.crf.end),
                             net_crf, ("trans", "start", "end")):
        torch.testing.assert_close(p.detach(), 0.3 * linear[name].float() + 0.7 * ours)


def test_a_run_validates_the_linear_start_and_its_mixes(tmp_path):
    task = tag_task(tmp_path)
    assert task.model.config.crf and task.eval_at_start
    config = TrainConfig(lr=1e-2, max_steps=20, eval_every=10, warmup_steps=0, log_every=10)
    metrics = train(task, config, tmp_path / "run", quiet=True)
    evals = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert evals[0]["step"] == 0 and evals[0]["val_blend"] == 0.0   # the linear start itself
    assert all(0.0 <= e["val_blend"] < 1.0 for e in evals)
    assert metrics["steps"] == 20
    tagger = Tagger.load(tmp_path / "run")
    assert tagger.model.crf is not None
    assert len(tagger.tag([["the", "dog", "ran"]])[0]) == 3
    assert set(task.state_dict()["linear"]) == {"columns", "window", "trans", "start", "end"}


def test_without_the_linear_start_nothing_is_fitted(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(crf_fit, "fit", lambda *a, **k: called.append(1))
    task = tag_task(tmp_path, linear_start=False, crf_tags=0)
    assert not task.model.config.crf and not task.eval_at_start
    task.before_training(log=lambda *a: None)
    assert not called and task.linear is None


def test_a_task_too_large_for_the_fit_trains_the_network_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(crf_fit, "MAX_COST", 10)
    task = tag_task(tmp_path)
    assert not task.model.config.linear_start and not task.eval_at_start
    assert task.model.config.crf   # the network's own CRF layer: 5 tags (crf_tags)
    assert not tag_task(tmp_path, crf_tags=0).model.config.crf


def test_a_resumed_run_goes_on_validating_mixes_with_the_same_linear_start(tmp_path):
    task = tag_task(tmp_path)
    config = TrainConfig(lr=1e-2, max_steps=10, eval_every=5, warmup_steps=0, log_every=5)
    train(task, config, tmp_path / "run", quiet=True)
    linear = task.state_dict()["linear"]
    again = tag_task(tmp_path)
    fitted = []
    again.before_training = lambda *a, **k: fitted.append(1)   # a resumed run fits nothing
    config = TrainConfig(lr=1e-2, max_steps=20, eval_every=5, warmup_steps=0, log_every=5)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    train(again, config, tmp_path / "run", quiet=True, resume_from=ckpt)
    assert not fitted
    for key, value in linear.items():
        torch.testing.assert_close(again.linear[key], value)
    evals = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert evals[-1]["step"] == 20 and "val_blend" in evals[-1]


def test_step_0_prints_no_training_figures(tmp_path, capsys):
    task = tag_task(tmp_path)
    train(task, TrainConfig(lr=1e-2, max_steps=5, eval_every=5, warmup_steps=0, log_every=5),
          tmp_path / "run")
    out = capsys.readouterr()
    lines = [l for l in (out.out + out.err).splitlines() if "step 0:" in l]
    assert lines and "nan" not in lines[0] and "val " in lines[0]


def test_a_crf_layer_where_the_tags_are_few(tmp_path):
    """Without --crf, a CRF layer where there are at most crf_tags tags (the fixture has 5)."""
    assert tag_task(tmp_path, linear_start=False).model.crf is not None
    assert tag_task(tmp_path, linear_start=False, crf_tags=4).model.crf is None
    assert tag_task(tmp_path, linear_start=False, crf_tags=4, crf=True).model.crf is not None
