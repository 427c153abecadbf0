"""Weight averaging (Polyak) in the classifier: the moving average's arithmetic, eval mode
predicting with it, the task folding each step in once (resumed runs included), and checkpoints
from before averaging."""
import pytest
import torch
from torch import nn

from rnnkit.models.averaging import WeightAverage
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier
from rnnkit.tasks.classify_trained import Classifier
from rnnkit.tasks.common import train
from rnnkit.train import TrainConfig
from task_fixtures import classify_task


def test_the_average_follows_the_warmed_up_decay():
    lin = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    avg = WeightAverage(lin, decay=0.5)
    expected = 0.0
    for n, w in enumerate([1.0, 2.0, 3.0], 1):
        with torch.no_grad():
            lin.weight.fill_(w)
        avg.update(lin.parameters())
        beta = min(0.5, (1 + n) / (10 + n))     # 0.18, 0.25, 0.31...: the warm-up first
        expected = beta * expected + (1 - beta) * w
        assert float(avg.averages()[0]) == pytest.approx(expected)
    assert int(avg.updates) == 3
    with pytest.raises(ValueError, match="decay must be in"):
        WeightAverage(lin, decay=1.0)


def test_swapped_in_restores_the_trained_weights_even_on_an_error():
    lin = nn.Linear(2, 2)
    avg = WeightAverage(lin, decay=0.9)
    with torch.no_grad():
        lin.weight.add_(1.0)
    trained = lin.weight.detach().clone()
    with pytest.raises(RuntimeError, match="boom"), avg.swapped_in(lin.parameters()):
        assert torch.equal(lin.weight, avg.averages()[0])
        raise RuntimeError("boom")
    assert torch.equal(lin.weight, trained)


def small_model(average):
    torch.manual_seed(0)
    cfg = ClassifierConfig(vocab_size=20, num_classes=2, hidden=8, embed=8, dropout=0.0,
                           average=average)
    return SequenceClassifier(cfg)


def test_eval_mode_predicts_with_the_average_and_training_with_the_weights():
    model = small_model(0.9)
    x, lengths = torch.tensor([[3, 4, 5], [6, 7, 0]]), torch.tensor([3, 2])
    start = model(x, lengths).detach()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    model.update_average()                                 # 0.82 of the start, 0.18 moved
    moved = model(x, lengths).detach()
    model.eval()
    averaged = model(x, lengths)
    assert not torch.allclose(averaged, moved) and not torch.allclose(averaged, start)
    plain = small_model(0.0)                               # the averaged weights, loaded alone
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if not k.startswith("average.")})
    with torch.no_grad():
        for p, a in zip(plain.parameters(), model.average.averages()):
            p.copy_(a)
    assert torch.allclose(plain.eval()(x, lengths), averaged)
    baked = model.averaged()                               # what Classifier.load gives
    assert baked.average is None and torch.allclose(baked(x, lengths), averaged)
    model.train()
    assert torch.allclose(model(x, lengths), moved)        # the trained weights are back
    assert small_model(0.0).average is None and plain.averaged() is plain


def test_the_task_folds_each_step_in_once_also_when_resumed(tmp_path):
    cfg = dict(eval_every=3, lr=0.01, warmup_steps=0, schedule="constant")
    quiet = dict(quiet=True, log=lambda *a: None)
    torch.manual_seed(1)
    task = classify_task(tmp_path, average=0.8)
    train(task, TrainConfig(max_steps=6, **cfg), tmp_path / "straight", **quiet)
    straight = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["model"]
    assert int(straight["average.updates"]) == 6
    torch.manual_seed(1)
    first = classify_task(tmp_path, average=0.8)
    train(first, TrainConfig(max_steps=3, **cfg), tmp_path / "resumed", **quiet)
    torch.manual_seed(1)
    second = classify_task(tmp_path, average=0.8)
    ckpt = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)
    train(second, TrainConfig(max_steps=6, **cfg), tmp_path / "resumed", resume_from=ckpt,
          **quiet)
    resumed = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)["model"]
    for k in straight:
        assert torch.allclose(straight[k].float(), resumed[k].float(), atol=1e-6), k


def test_a_checkpoint_from_before_averaging_loads(tmp_path):
    task = classify_task(tmp_path, average=0.0)
    out = tmp_path / "run"
    train(task, TrainConfig(max_steps=2, eval_every=2), out, quiet=True, log=lambda *a: None)
    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert not any(k.startswith("average.") for k in ckpt["model"])
    del ckpt["model_config"]["average"]
    ckpt["version"] = 1                                   # written before checkpoint digests
    del ckpt["digest"]
    torch.save(ckpt, out / "old.pt")
    with pytest.warns(UserWarning, match="no content digest"):
        old = Classifier.load(out / "old.pt")            # predicts with its trained weights
    assert old.model.average is None
    assert old.predict(["a good film"]) == Classifier.load(out).predict(["a good film"])
    averaging = SequenceClassifier(ClassifierConfig(**{**ckpt["model_config"], "average": 0.99}))
    averaging.load_state_dict(ckpt["model"])             # a resume: the average starts there
    assert int(averaging.average.updates) == 0
    for p, a in zip(averaging.parameters(), averaging.average.averages()):
        assert torch.equal(p, a)
