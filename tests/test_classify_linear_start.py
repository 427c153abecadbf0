"""The classifier's linear start (its bag alone fitted as a logistic regression before training)
and class weights: the fitted model is the penalised optimum, the penalty path, when it is
fitted and how long it may take, and the balanced weights in every loss."""
import json
import re

import pytest
import torch
import torch.nn.functional as F

from rnnkit.cli.main import main
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.tasks.classify import ClassifyData, batch, build_classify_task
from test_classify_tokens import ZH_NEG, ZH_POS, write_zh, zh_task


def test_step_0_is_the_bag_alone_fitted_as_a_logistic_regression(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1e-2, 1e-3))   # penalties that shape the optimum
    task = zh_task(tmp_path)
    assert task.model.config.linear_start and task.eval_at_start
    initial = {k: v.clone() for k, v in task.model.state_dict().items()}
    logs = []
    task.before_training(log=logs.append)
    orders = bag_fit.bag_orders(task.model.config.ngrams)                  # [3, 2] on characters
    assert orders == [3, 2] and "logistic regression" in logs[-1]
    assert 2 * len(orders) <= len(logs) <= len(orders) * (len(bag_fit.LAMBDAS) + 1) + 1
    assert task.model.config.bag_ngrams in orders                           # the order chosen
    lam = float(logs[-1].split("λ ")[1].split(",")[0])
    model, (encoded, y) = task.model, task.train
    x, lengths, grams = batch(encoded)
    z = model.bag(x, lengths, grams).double() + model.head.bias.double()     # the linear model
    U = torch.cat([model.bag.tokens.weight, model.bag.grams.weight]).double()
    # at the optimum the penalised loss is flat in every weight: Xᵀ(P - Y)/N + λU/idf² = 0
    U.requires_grad_(True)
    with torch.no_grad():
        Xdense = torch.zeros(len(encoded), U.shape[0], dtype=torch.float64)
        r, c, v = bag_fit.features(bag_fit._slots(model.bag, encoded), model.config.vocab_size,
                                   model.bag.counts)
        Xdense.index_put_((r, c), v, accumulate=True)
    idf = 1 + torch.log((1 + len(encoded)) / (1 + (Xdense > 0).sum(0)))     # (F,) as tf-idf has it
    loss = (F.cross_entropy(Xdense @ U + model.head.bias.double(), y)
            + lam / 2 * (U.pow(2) / idf[:, None] ** 2).sum())
    (grad,) = torch.autograd.grad(loss, U)
    assert float(grad.abs().max()) < 1e-4
    torch.testing.assert_close(z, (Xdense @ U + model.head.bias.double()).detach())
    assert float((z.argmax(1) == y).double().mean()) == 1.0                  # it fits the texts
    torch.testing.assert_close(model(x, lengths, grams).double(), z)         # no recurrent part
    task.train_batch(0)                                    # training starts from the initial weights
    for k, v in task.model.state_dict().items():
        torch.testing.assert_close(v, initial[k])


def test_the_penalty_path_stops_at_the_first_penalty_that_validates_worse(monkeypatch):
    from rnnkit.models import bag_fit
    torch.manual_seed(0)
    # noise features: the less the penalty, the closer the fit to the training labels' noise
    train = [([1 + int(t) for t in torch.randint(0, 30, (6,))], None) for _ in range(40)]
    val = [([1 + int(t) for t in torch.randint(0, 30, (6,))], None) for _ in range(40)]
    y, y_val = torch.randint(0, 2, (40,)), torch.randint(0, 2, (40,))
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5))
    logs = []
    *_, lam, val_loss = bag_fit.fit(train, y, val, y_val, 31, 2, log=logs.append)
    tried = [float(line.split("validation loss ")[1].split(",")[0]) for line in logs]
    assert len(tried) < len(bag_fit.LAMBDAS)                        # it stopped on the way
    assert tried[-1] > min(tried) and val_loss == pytest.approx(min(tried), abs=1e-4)
    assert all(a > b for a, b in zip(tried, tried[1:-1]))           # falling until the last


def noise_texts(n=40):
    torch.manual_seed(0)
    return ([([1 + int(t) for t in torch.randint(0, 30, (6,))], None) for _ in range(n)],
            torch.randint(0, 2, (n,)))


def test_without_a_time_limit_the_path_runs_as_it_always_did(monkeypatch):
    from rnnkit.models import bag_fit
    train, y = noise_texts()
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1.0, 0.5, 0.2, 0.1))
    plain = bag_fit.fit(train, y, train, y, 31, 2, log=lambda *a: None)
    endless = bag_fit.fit(train, y, train, y, 31, 2, log=lambda *a: None,
                          time_left=lambda: float("inf"))
    assert plain[3] == endless[3] == 0.1
    assert torch.equal(plain[1], endless[1]) and torch.equal(plain[2], endless[2])


class FakeClock:
    """time_left() for a run with ``left`` seconds, each call taking ``tick`` of them."""

    def __init__(self, left, tick=1.0):
        self.left, self.tick, self.calls = left, tick, 0

    def __call__(self):
        self.calls += 1
        self.left -= self.tick
        return self.left


def test_under_a_time_limit_the_path_keeps_to_its_share_of_it(monkeypatch):
    from rnnkit.models import bag_fit
    train, y = noise_texts()
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1.0, 0.5, 0.2, 0.1))
    monkeypatch.setattr(bag_fit, "CHUNK_ITERATIONS", 2)
    fitted = lambda lines: [l for l in lines if "validation loss" in l]   # noqa: E731
    logs, clock = [], FakeClock(13.0)          # a budget of 6 s: 6 questions after the first
    result = bag_fit.fit(train, y, train, y, 31, 2, log=logs.append, time_left=clock)
    assert clock.calls <= 1 + 6 + 2            # asked between calls of 2 iterations only
    assert 1 <= len(fitted(logs)) < 4 and "the time limit)" in fitted(logs)[0]
    assert "its share of the time limit, 6 s, is spent" in logs[-1]
    tried = [float(l.split("λ ")[1].split(",")[0]) for l in fitted(logs)]
    assert result[3] in tried
    logs = []
    bag_fit.fit(train, y, train, y, 31, 2, log=logs.append, time_left=FakeClock(-5.0))
    assert len(fitted(logs)) == 1 and "(2 L-BFGS iterations" in fitted(logs)[0]   # always one


def test_the_trainer_gives_the_linear_start_the_time_left(tmp_path, monkeypatch):
    import math

    from rnnkit.tasks import classify
    seen = []

    def spy(*a, time_left=None, **k):
        seen.append(time_left())
        return "fitted"
    monkeypatch.setattr(classify, "start_bag", spy)
    for minutes in ("0.5", "0"):
        assert main(["train", "classify", "--data", str(write_zh(tmp_path)), "--hidden", "4",
                     "--embed", "4", "--min-count", "1", "--max-steps", "1", "--max-minutes",
                     minutes, "--quiet", "--out", str(tmp_path / f"run{minutes}")]) == 0
    assert 0 < seen[0] <= 30 and seen[1] == math.inf


def test_a_fresh_run_validates_the_fitted_bag_and_a_resumed_one_does_not(tmp_path, capsys):
    out = tmp_path / "run"
    fresh = ["train", "classify", "--data", str(write_zh(tmp_path)), "--hidden", "4", "--embed",
             "4", "--min-count", "1", "--max-steps", "2", "--eval-every", "2", "--quiet",
             "--out", str(out)]
    assert main(fresh) == 0
    assert "the bag alone: the logistic regression" in capsys.readouterr().out
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val_loss" in r] == [0, 2]
    assert main(["train", "classify", "--out", str(out), "--resume", "--max-steps", "4",
                 "--quiet"]) == 0
    assert "bag fit" not in capsys.readouterr().out


def test_without_linear_start_nothing_is_fitted(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    d = ClassifyData(data=str(write_zh(tmp_path)), batch=8, min_count=1)
    task = build_classify_task(d, ClassifierConfig(hidden=8, embed=8, buckets=64,
                                                   linear_start=False), log=lambda *a: None)
    assert not task.eval_at_start
    monkeypatch.setattr(bag_fit, "fit", lambda *a, **k: pytest.fail("fitted"))
    task.before_training(log=lambda *a: None)
    assert float(task.model.bag.tokens.weight.detach().abs().sum()) == 0.0


def test_the_linear_start_counts_towards_the_time_limit(tmp_path, monkeypatch):
    """--max-minutes is the run's whole time: a fit that takes longer leaves no time to train,
    and the run ends at step 0 with the fitted model as best.pt (and its test figures)."""
    import time

    from rnnkit.tasks import classify
    fit = classify.start_bag

    def slow_fit(*a, **k):
        text = fit(*a, **k)
        time.sleep(1.5)
        return text
    monkeypatch.setattr(classify, "start_bag", slow_fit)
    out = tmp_path / "run"
    assert main(["train", "classify", "--data", str(write_zh(tmp_path)), "--hidden", "4",
                 "--embed", "4", "--min-count", "1", "--max-steps", "0", "--max-minutes", "0.02",
                 "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 0 and metrics["best_step"] == 0 and "test_accuracy" in metrics
    assert torch.load(out / "best.pt", weights_only=True)["trainer"]["step"] == 0


def test_balanced_class_weights_weigh_each_class_as_much():
    from rnnkit.tasks.classify import balanced_weights
    w = balanced_weights(torch.tensor([0, 0, 0, 1]), 3)
    torch.testing.assert_close(w, torch.tensor([4 / 9, 4 / 3, 1.0]))     # N / (K n_k); none: 1


def test_class_weights_enter_the_training_and_validation_losses(tmp_path):
    rows = [f"positive\t{t}" for t in ZH_POS * 3] + [f"negative\t{t}" for t in ZH_NEG]
    d = ClassifyData(data=str(write_zh(tmp_path, rows=rows)), batch=8, min_count=1,
                     class_weight="balanced")
    task = build_classify_task(d, ClassifierConfig(hidden=8, embed=8, dropout=0.0, buckets=64),
                               log=lambda *a: None)
    y = task.train[1]
    counts = torch.bincount(y, minlength=2).float()
    assert counts[0] < counts[1] / 2                                  # negative is the rare one
    torch.testing.assert_close(task.weight, len(y) / (2 * counts))
    x, lengths, grams, yb = task.train_batch(0)
    logits = task.model(x, lengths, grams)
    per = F.cross_entropy(logits, yb, reduction="none")
    want = (per * task.weight[yb]).sum() / task.weight[yb].sum()
    torch.testing.assert_close(task.loss((x, lengths, grams, yb))[0], want)
    task.model.eval()
    with torch.no_grad():
        loss, gold, _ = task.scores(task.val)
        logits = task.model(*batch(task.val[0]))
    per = F.cross_entropy(logits, task.val[1], reduction="none")
    w = task.weight[task.val[1]]
    assert loss == pytest.approx(float((per * w).sum() / w.sum()), rel=1e-5)


def test_the_linear_start_with_class_weights_is_the_weighted_optimum(monkeypatch):
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1e-2,))
    torch.manual_seed(0)
    texts = [[1 + int(t) for t in torch.randint(0, 12, (5,))] for _ in range(60)]
    y = torch.tensor([int(t[0] <= 3) for t in texts])          # a rare class: 1 in 4 or so
    train = [(t, None) for t in texts]
    w = torch.tensor([0.6, 2.5])
    columns, U, b, lam, _ = bag_fit.fit(train, y, train, y, 13, 2, log=lambda *a: None,
                                        class_weight=w)
    r, c, v = bag_fit.features(train, 13)
    X = torch.zeros(60, 13, dtype=torch.float64).index_put_((r.long(), c.long()), v,
                                                             accumulate=True)
    X = X[:, columns]
    idf = bag_fit.idf(c, columns, 60)[:, None]
    U, b = U.clone().requires_grad_(True), b.clone().requires_grad_(True)
    loss = (F.cross_entropy(X @ U + b, y, weight=w.double())
            + lam / 2 * (U.pow(2) / idf ** 2).sum())
    gU, gb = torch.autograd.grad(loss, (U, b))
    assert max(float(gU.abs().max()), float(gb.abs().max())) < 1e-4
    plain = bag_fit.fit(train, y, train, y, 13, 2, log=lambda *a: None)
    assert float((U.detach() - plain[1]).abs().max()) > 1e-2                 # the weights changed it


def test_the_linear_start_chooses_the_bags_ngram_order_on_validation(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    from rnnkit.tasks.classify_trained import Classifier
    from rnnkit.tasks.common import train
    from rnnkit.train import TrainConfig
    real, seen = bag_fit.fit, []

    def fit(train_, *a, **k):   # order 2 (one gram slot read) validates better here
        found = real(train_, *a, **k)
        seen.append(train_[0][1].shape[1])
        return (*found[:4], found[4] - 1.0 if train_[0][1].shape[1] == 1 else found[4])
    monkeypatch.setattr(bag_fit, "fit", fit)
    task = zh_task(tmp_path)
    task.before_training(log=lambda *a: None)
    assert seen == [2, 1]                     # 2-3-grams first, then 2-grams alone
    assert task.model.config.bag_ngrams == 2 and task.model.bag.cut == (1, 2)
    x, lengths, grams = batch(task.train[0][:8])
    noise = grams.clone()
    noise[..., 1] = torch.randint(1, 100, noise[..., 1].shape)   # the 3-grams' slot: not read
    torch.testing.assert_close(task.model.bag(x, lengths, grams), task.model.bag(x, lengths, noise))
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=4, eval_every=2, warmup_steps=0), out, quiet=True,
          log=lambda *a: None)
    clf = Classifier.load(out)               # best.pt reads the n-grams the start chose
    assert clf.model.config.bag_ngrams == 2 and clf.model.bag.cut == (1, 2)
    texts = ["很好，很喜欢", "太差了，很失望"]
    for (a, pa), (b, pb) in zip(Classifier.from_task(task).predict(texts), clf.predict(texts)):
        assert a == b and pa == pytest.approx(pb)


def test_a_bag_ngram_order_given_is_the_only_one_fitted(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    from rnnkit.tasks.classify import ConfigError
    orders = []
    monkeypatch.setattr(bag_fit.BagOfNgrams, "read_order",
                        lambda self, o, real=bag_fit.BagOfNgrams.read_order:
                        (orders.append(o), real(self, o))[1])
    task = build_classify_task(
        ClassifyData(data=str(write_zh(tmp_path)), batch=8, min_count=1),
        ClassifierConfig(hidden=8, embed=8, buckets=64, bag_ngrams=3), log=lambda *a: None)
    orders.clear()
    task.before_training(log=lambda *a: None)
    assert set(orders) == {3} and task.model.config.bag_ngrams == 3
    with pytest.raises(ConfigError, match="--bag-ngrams 4: .* at most --ngrams \\(3\\)"):
        build_classify_task(ClassifyData(data=str(write_zh(tmp_path)), min_count=1),
                            ClassifierConfig(bag_ngrams=4), log=lambda *a: None)


def test_under_a_time_limit_the_orders_share_one_fits_budget(tmp_path, monkeypatch):
    from rnnkit.models import bag_fit
    real, budgets = bag_fit.fit, []

    def fit(*a, budget=None, **k):
        budgets.append(budget)
        return real(*a, budget=budget, **k)
    monkeypatch.setattr(bag_fit, "fit", fit)
    task = zh_task(tmp_path)
    clock = FakeClock(41.0)                      # 40 s left: a budget of 20 s for both orders
    task.before_training(log=lambda *a: None, time_left=clock)
    assert budgets[0] == pytest.approx(20 / 2, abs=1.01)         # half of it for the first
    assert 0 <= budgets[1] <= 20 - budgets[0] + 1.01             # what the first left over
    budgets.clear()
    zh_task(tmp_path).before_training(log=lambda *a: None)        # no limit: none
    assert budgets == [None, None]


def test_checkpoints_from_before_the_order_choice_read_every_ngram(tmp_path):
    from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
    from rnnkit.tasks.classify_trained import Classifier
    from rnnkit.tasks.common import train
    from rnnkit.train import TrainConfig
    task = zh_task(tmp_path)
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=2, eval_every=2), out, quiet=True, log=lambda *a: None)
    ckpt = load_checkpoint(out / "best.pt")
    del ckpt["model_config"]["bag_ngrams"]              # as written before the choice
    save_checkpoint(out / "old.pt", ckpt)
    old = Classifier.load(out / "old.pt")
    assert old.model.config.bag_ngrams == 0
    assert old.model.bag.cut == (2, 2)                  # nothing cut out


def test_a_large_training_set_is_told_what_the_fit_starts(tmp_path, capsys, monkeypatch):
    """A fit on 300,000 texts spent 140 s building its features and its first penalty's path
    with nothing said after the model's line."""
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LARGE", 10)
    out = tmp_path / "run"
    assert main(["train", "classify", "--data", str(write_zh(tmp_path)), "--hidden", "4",
                 "--embed", "4", "--min-count", "1", "--max-steps", "1", "--eval-every", "1",
                 "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert re.search(r"bag fit: the features of \d+ texts, then up to 9 penalties for each of "
                     r"2 n-gram orders \(--no-linear-start leaves the linear start out\)", said)
    assert said.count("bag fit: the features") == 1   # (once, not once an order)
    assert said.index("bag fit: the features of") < said.index("bag fit: λ")
