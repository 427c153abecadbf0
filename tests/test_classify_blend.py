"""Mixes of the classifier's trained network with its linear start: the mixed state is the logit
mix exactly (moving average included), each evaluation validates the mixes and stands for the
best, best.pt keeps it, a resumed run keeps validating them, ``--no-blend`` leaves them out."""
import dataclasses
import json

import torch
import torch.nn.functional as F

from rnnkit.cli.main import main
from rnnkit.models.bag_fit import BLENDS, blended_state, linear_scorer, linear_weights
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks.classify import ClassifyData, batch, build_classify_task
from rnnkit.tasks.classify_trained import Classifier
from test_classify_tokens import zh_task


def loss_of(model, part):
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(*batch(part[0])), part[1]))


def test_the_mixed_state_gives_the_mix_of_the_logits_exactly():
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=30, num_classes=3, embed=6, hidden=5, ngrams=3, buckets=40,
                           bag="on", bag_buckets=50, average=0.9, dropout=0.0)
    model = SequenceClassifier(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
        model.update_average()
        for p in model.parameters():   # the average differs from the weights
            p.add_(torch.randn_like(p))
    linear = {"tokens": torch.randn(30, 3), "bias": torch.randn(3),
              "gram_ids": torch.tensor([1, 7, 49]), "grams": torch.randn(3, 3)}
    x = torch.randint(1, 30, (4, 9))
    lengths, grams = torch.tensor([9, 5, 1, 7]), torch.randint(0, 51, (4, 9, 2))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        z_net, z_lin = model(x, lengths, grams), linear_scorer(cfg, linear)(x, lengths, grams)
        for share in (0.0, 0.3, 1.0):
            mixed = SequenceClassifier(cfg)
            mixed.load_state_dict(blended_state(model, linear, share))
            torch.testing.assert_close(mixed.eval()(x, lengths, grams),
                                       share * z_lin + (1 - share) * z_net)
    for k, v in model.state_dict().items():   # the model itself is left as it was
        torch.testing.assert_close(v, before[k])


def test_each_evaluation_stands_for_the_best_mix(tmp_path):
    task = zh_task(tmp_path)
    task.before_training(log=lambda *a: None)
    task.train_batch(0)                      # the network at its initial weights: it knows nothing
    task.model.eval()
    with torch.no_grad():
        m = task.evaluate()
    alone = loss_of(task.model, task.val)
    assert m["val_blend"] in BLENDS and m["val_loss"] < alone
    best = SequenceClassifier(task.model.config)
    best.load_state_dict(task.best_model_state())
    assert abs(loss_of(best, task.val) - m["val_loss"]) < 1e-5
    for share in BLENDS:   # no other mix validates better
        other = SequenceClassifier(task.model.config)
        other.load_state_dict(blended_state(task.model, task.linear, share))
        assert loss_of(other, task.val) >= m["val_loss"] - 1e-5


def test_a_mix_is_never_taken_over_the_network_when_the_network_is_the_linear_model(tmp_path):
    task = zh_task(tmp_path)
    task.before_training(log=lambda *a: None)   # step 0: the live model is the linear start
    task.model.eval()
    with torch.no_grad():
        m = task.evaluate()
    assert m["val_blend"] == 0.0 and task.best_model_state() is None


def noisy(tmp_path):
    """Texts labelled by their counts of good and bad characters, a tenth of the labels flipped:
    neither the network nor the linear model fits the validation part."""
    g = torch.Generator().manual_seed(0)
    chars = "好差书服务质量推荐满意失望喜欢糟糕值得购买生气"
    rows = []
    for i in range(600):
        text = "".join(chars[j] for j in torch.randint(0, len(chars), (12,), generator=g))
        good = sum(text.count(c) for c in "好满意喜欢推荐") > sum(text.count(c) for c in "差失望糟糕")
        flip = bool(torch.rand((), generator=g) < 0.1)
        rows.append(f"{'positive' if good != flip else 'negative'}\t{text}")
    path = tmp_path / "noisy.tsv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_best_pt_holds_the_mix_that_validated_best_and_a_resumed_run_goes_on(tmp_path,
                                                                           monkeypatch):
    from rnnkit.models import bag_fit
    monkeypatch.setattr(bag_fit, "LAMBDAS", (1e-5,))   # an overconfident linear start
    out, data = tmp_path / "run", noisy(tmp_path)
    args = ["train", "classify", "--data", str(data), "--hidden", "4", "--embed", "4",
            "--min-count", "1", "--max-steps", "4", "--eval-every", "2", "--quiet", "--batch",
            "32", "--no-prior-shift", "--out", str(out)]   # best.pt: the mix alone
    assert main(args) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[0]["val_blend"] == 0.0 and all(r["val_blend"] in (0.0, *BLENDS) for r in rows)
    best = min(rows, key=lambda r: r["val_loss"])
    assert best["val_blend"] > 0                      # a mix validated best
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_step"] == best["step"]
    # best.pt, loaded for prediction, is the mix that validated best; the test part scored it
    ckpt = torch.load(out / "best.pt", weights_only=True)
    task = build_classify_task(ClassifyData(**ckpt["data_config"]),
                               ClassifierConfig(**ckpt["model_config"]), log=lambda *a: None)
    model = Classifier.load(out).model
    assert abs(loss_of(model, task.val) - best["val_loss"]) < 1e-5
    assert abs(loss_of(model, task.test) - metrics["test_loss"]) < 1e-5
    assert main(["train", "classify", "--out", str(out), "--resume", "--max-steps", "6",
                 "--quiet"]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 2, 4, 6] and rows[-1]["val_blend"] in BLENDS


def test_no_blend_validates_the_network_alone(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "classify", "--data", str(noisy(tmp_path)), "--hidden", "4", "--embed",
                 "4", "--min-count", "1", "--max-steps", "2", "--eval-every", "2", "--quiet",
                 "--no-blend", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and not any("val_blend" in r for r in rows)


def test_the_linear_weights_keep_the_fitted_rows_only(tmp_path):
    task = zh_task(tmp_path)
    task.before_training(log=lambda *a: None)
    w = linear_weights(task.model)
    grams = task.model.bag.grams.weight
    assert len(w["gram_ids"]) == int((grams.abs().sum(1) > 0).sum()) < grams.shape[0]
    torch.testing.assert_close(w["grams"], grams[w["gram_ids"]].detach())
    assert dataclasses.asdict(task.model.config)["blend"] is True
