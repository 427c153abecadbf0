"""Tiny corpora and a tiny language-model run, written by the tests themselves (no network)."""
from rnnkit.models import LMConfig
from rnnkit.train import TrainConfig
from rnnkit.tasks.lm import LMData, build_lm_task

ENGLISH = ("ROMEO.\nBut soft, what light through yonder window breaks?\n\n"
           "JULIET.\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 12
CHINESE = "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n\n" * 20


def write_corpus(tmp_path, text=ENGLISH, name="corpus.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def tiny_configs(path, **train):
    data = LMData(data=str(path), seq_len=16, batch=4)
    model = LMConfig(cell="lstm", layers=1, hidden=32, embed=16)
    train = TrainConfig(**{"lr": 1e-2, "max_steps": 30, "eval_every": 10, "warmup_steps": 0,
                           "log_every": 5, **train})
    return data, model, train


def lm_task(tmp_path, text=ENGLISH, **model):
    """A tiny language-model trainer task on a corpus the test writes."""
    data = LMData(data=str(write_corpus(tmp_path, text)), seq_len=16, batch=4)
    config = LMConfig(**{"cell": "lstm", "layers": 1, "hidden": 32, **model})
    return build_lm_task(data, config, log=lambda *a: None)


def lm_continuations(predictor):
    """Greedy continuations of two primes, and the log-probabilities after them."""
    import torch
    from rnnkit.decode import sample
    model, vocab = predictor
    out = []
    for prime in (vocab.itos[:2], vocab.itos[1:4]):
        ids = vocab.encode("".join(prime))
        out.append(torch.cat(list(sample(model, ids, 8, 0.0))).tolist())
    logits, _ = model.eval()(torch.tensor([vocab.encode("".join(vocab.itos[:5]))]))
    return out + [logits.log_softmax(-1)[0, -1].tolist()]
