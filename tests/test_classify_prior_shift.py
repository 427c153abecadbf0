"""The classifier's prior shift: each evaluation also validates the logits less τ log(class
share); a τ with a better validation macro-F1 stands for the evaluation, best.pt holds it in its
output bias (moving average included), ``val_loss`` stays the unshifted model's, and
``--no-prior-shift`` and checkpoints from before it leave it out."""
import json

import torch
import torch.nn.functional as F

from rnnkit.cli.main import main
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks.classify import ClassifyData, batch, build_classify_task, shifted_bias
from rnnkit.tasks.classify_trained import Classifier, SAVED_BEFORE
from rnnkit.tasks.classify_prior import PRIOR_SHIFTS
from rnnkit.tasks.metrics import bootstrap_wins, macro_f1, weighted_macro_f1


def skewed(tmp_path, n=2000):
    """A tenth of the texts are "rare": they hold more of its characters than the others do,
    among random ones; a heavily penalised linear start under-predicts them."""
    g = torch.Generator().manual_seed(0)
    common, marked = "书服务质量推荐满意值得购买生气", "稀少罕见"
    rows = []
    for _ in range(n):
        rare = bool(torch.rand((), generator=g) < 0.1)
        text = [common[j] for j in torch.randint(0, len(common), (10,), generator=g)]
        k = (int(torch.randint(1, 4, (), generator=g)) if rare
             else int(torch.rand((), generator=g) < 0.3))
        text += [marked[j] for j in torch.randint(0, len(marked), (k,), generator=g)]
        rows.append(f"{'rare' if rare else 'common'}\t{''.join(text)}")
    path = tmp_path / "skewed.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def logits(model, part):
    model.eval()
    with torch.no_grad():
        return model(*batch(part[0]))


def test_the_shifted_state_adds_to_the_logits_exactly():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=30, num_classes=3, embed=6, hidden=5, ngrams=3, buckets=40,
                           bag="on", bag_buckets=50, average=0.9, dropout=0.0)
    model = SequenceClassifier(cfg)
    with torch.no_grad():
        model.update_average()
        for p in model.parameters():   # the average differs from the weights
            p.add_(torch.randn_like(p))
    x = torch.randint(1, 30, (4, 9))
    lengths, grams = torch.tensor([9, 5, 1, 7]), torch.randint(0, 51, (4, 9, 2))
    delta = torch.tensor([0.5, -1.0, 2.0])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shifted = SequenceClassifier(cfg)
    shifted.load_state_dict(shifted_bias(model.state_dict(), delta))
    with torch.no_grad():
        for train in (True, False):   # the weights (training) and their average (evaluation)
            model.train(train), shifted.train(train)
            torch.manual_seed(1)
            z = model(x, lengths, grams)
            torch.manual_seed(1)
            torch.testing.assert_close(shifted(x, lengths, grams), z + delta)
    for k, v in model.state_dict().items():   # the model itself is left as it was
        torch.testing.assert_close(v, before[k])


def test_the_weighted_macro_f1_and_the_bootstrap_evidence():
    g = torch.Generator().manual_seed(0)
    gold, noise = torch.randint(0, 4, (200,), generator=g), torch.randint(0, 4, (200,), generator=g)
    pred = torch.where(torch.rand(200, generator=g) < 0.5, gold, noise)
    w = torch.ones(1, 200, dtype=torch.float64)
    assert abs(float(weighted_macro_f1(gold, pred, w, 4)) - macro_f1(gold.tolist(),
                                                                     pred.tolist())) < 1e-12
    twice = torch.cat([w, 2 * w])       # counting every example twice changes nothing
    torch.testing.assert_close(weighted_macro_f1(gold, pred, twice, 4)[1],
                               weighted_macro_f1(gold, pred, w, 4)[0])
    only = (gold == 1).double()[None]   # a resample of class 1's examples alone
    assert abs(float(weighted_macro_f1(gold, pred, only, 4))
               - macro_f1(gold[gold == 1].tolist(), pred[gold == 1].tolist(), labels={1})) < 1e-12
    assert bootstrap_wins(gold, noise, gold, 4) == 1.0      # perfect against chance: always
    assert bootstrap_wins(gold, pred, pred, 4) == 0.0       # a tie is not a win
    one = pred.clone()
    one[gold != pred] = gold[gold != pred]
    one[:len(one) // 2] = pred[:len(one) // 2]             # half the errors mended: mostly
    assert 0.9 < bootstrap_wins(gold, pred, one, 4) <= 1.0
    assert bootstrap_wins(gold, pred, one, 4) == bootstrap_wins(gold, pred, one, 4)   # seeded


def test_an_evaluation_takes_the_shift_with_the_best_validation_macro_f1(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1e-1,))   # a linear start that under-predicts "rare"
    task = build_classify_task(ClassifyData(data=str(skewed(tmp_path)), batch=16, min_count=1),
                               ClassifierConfig(hidden=4, embed=4, dropout=0.0, buckets=64),
                               log=lambda *a: None)
    task.before_training(log=lambda *a: None)   # step 0: the linear start
    task.model.eval()
    with torch.no_grad():
        m = task.evaluate()
    z, y = logits(task.model, task.val), task.val[1]
    assert m["val_loss"] == float(F.cross_entropy(z, y))   # the unshifted model's loss
    own = macro_f1(y.tolist(), z.argmax(1).tolist())
    assert m["val_prior_shift"] in PRIOR_SHIFTS and m["val_macro_f1"] > own
    for tau in (0.0, *PRIOR_SHIFTS):   # no other τ validates better
        pred = (z - tau * task.log_prior).argmax(1).tolist()
        assert macro_f1(y.tolist(), pred) <= m["val_macro_f1"]
    best = SequenceClassifier(task.model.config)   # best.pt's state predicts the shifted argmax
    best.load_state_dict(task.best_model_state())
    torch.testing.assert_close(logits(best, task.val), z - m["val_prior_shift"] * task.log_prior)
    prior = torch.bincount(task.train[1]).float() / len(task.train[1])
    torch.testing.assert_close(task.log_prior, prior.log())


def test_best_pt_predicts_with_the_shift_and_no_prior_shift_leaves_it_out(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1e-1,))
    data = skewed(tmp_path)
    common = ["--data", str(data), "--hidden", "4", "--embed", "4", "--min-count", "1",
              "--max-steps", "2", "--eval-every", "2", "--quiet"]
    out = tmp_path / "run"
    assert main(["train", "classify", *common, "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    best = min(rows, key=lambda r: r["val_loss"])
    assert rows[0]["val_prior_shift"] in PRIOR_SHIFTS   # the linear start takes a shift
    metrics = json.loads((out / "metrics.json").read_text())
    ckpt = torch.load(out / "best.pt", weights_only=True)
    task = build_classify_task(ClassifyData(**ckpt["data_config"]),
                               ClassifierConfig(**ckpt["model_config"]), log=lambda *a: None)
    model = Classifier.load(out).model
    gold, pred = task.val[1].tolist(), logits(model, task.val).argmax(1).tolist()
    assert abs(macro_f1(gold, pred) - best["val_macro_f1"]) < 1e-9
    shift = best["val_prior_shift"] * task.log_prior
    unshifted = logits(model, task.val) + shift
    assert abs(float(F.cross_entropy(unshifted, task.val[1])) - best["val_loss"]) < 1e-5
    test_pred = logits(model, task.test).argmax(1).tolist()
    assert abs(macro_f1(task.test[1].tolist(), test_pred) - metrics["test_macro_f1"]) < 1e-9
    off = tmp_path / "off"
    assert main(["train", "classify", *common, "--no-prior-shift", "--out", str(off)]) == 0
    rows = [json.loads(line) for line in (off / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and not any("val_prior_shift" in r for r in rows)
    assert SAVED_BEFORE["prior_shift"] is False
