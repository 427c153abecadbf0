"""The task-model contract for Seq2Seq and ConditionalGenerator on tiny fixtures: train a few steps
with the one Trainer, loss falls, save, load, and the loaded model decodes the same."""
import json
import random

import pytest
import torch

from rnnkit.models.conditional import CondConfig
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.cond import CondData, build_cond_task, generate, load_cond
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task, load_seq2seq
from rnnkit.tasks.translation import Translator
from rnnkit.train import Checkpointer, TrainConfig, Trainer

WORDS = {"ich": "I", "du": "you", "sehe": "see", "den": "the", "hund": "dog", "die": "the",
         "katze": "cat", "ein": "a", "haus": "house", "rot": "red"}
NAMES = {"Italy": ["Marco", "Giulia", "Luca", "Francesca", "Matteo", "Chiara", "Paolo", "Sofia"],
         "Japan": ["Hiroshi", "Yuki", "Kenji", "Sakura", "Haruto", "Aiko", "Takeshi", "Emi"]}


def write_pairs(tmp_path, n=240):
    """Three-word 'German' phrases and their word-by-word 'English'."""
    r = random.Random(0)
    lines = []
    for _ in range(n):
        src = r.sample(sorted(WORDS), 3)
        lines.append(" ".join(src) + "\t" + " ".join(WORDS[w] for w in src))
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_names(tmp_path, repeat=12):
    lines = [f"{c}\t{n}{'' if k == 0 else 'o' * (k % 3)}" for k in range(repeat)
             for c, names in NAMES.items() for n in names]
    path = tmp_path / "names.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_train(steps=40):
    return TrainConfig(lr=1e-2, max_steps=steps, eval_every=steps // 2, warmup_steps=0,
                       log_every=10, seed=0)


def fit(task, out, steps=40):
    trainer = Trainer(task, tiny_train(steps), [Checkpointer(out)])
    return trainer.fit()


def seq2seq_task(path, **model):
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(embed=16, enc_hidden=16, hidden=32, max_len=40, **model)
    return build_seq2seq_task(Seq2SeqData(data=str(path), batch=16, val_pairs=0), cfg,
                              log=lambda *a: None)


@pytest.mark.parametrize("model", [dict(attention="general", input_feed=True),
                                   dict(attention="none", input_feed=False, cell="gru")])
def test_seq2seq_trains_saves_loads_translates_the_same(tmp_path, model):
    task = seq2seq_task(write_pairs(tmp_path), **model)
    first = task.evaluate()["val_loss"]
    fit(task, tmp_path / "run")
    rows = [json.loads(l) for l in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_loss"] < first and rows[-1]["train_loss"] < rows[0]["train_loss"]
    model2, src_vocab, tgt_vocab, _ = load_seq2seq(tmp_path / "run/last.pt")
    assert (src_vocab, tgt_vocab) == (task.src_vocab, task.tgt_vocab)
    sources = [s for s, _ in task.splits["val"]] + ["ich sehe den hund"]
    ours = Translator(task.model.eval(), task.src_vocab, task.tgt_vocab)
    theirs = Translator(model2, src_vocab, tgt_vocab)
    assert ours.greedy(sources) == theirs.greedy(sources)
    assert ours.beam(sources[0], 3) == theirs.beam(sources[0], 3)


def cond_task(path):
    torch.manual_seed(0)
    return build_cond_task(CondData(data=str(path), batch=16, val_pairs=0),
                           CondConfig(hidden=32, embed=8, cond_size=8, max_len=20),
                           log=lambda *a: None)


def test_conditional_generator_trains_saves_loads_samples_the_same(tmp_path):
    task = cond_task(write_names(tmp_path))
    first = task.evaluate()["val_loss"]
    fit(task, tmp_path / "run", steps=60)
    after = task.evaluate()
    assert after["val_loss"] < first
    model, vocab, conditions = load_cond(tmp_path / "run/last.pt")
    a = generate(task.model.eval(), task.vocab, task.conditions, "Italy", 5, seed=3)
    b = generate(model, vocab, conditions, "italy", 5, seed=3)   # labels match case-insensitively
    assert a == b and all(isinstance(s, str) for s in a)


def test_condition_matters_after_training(tmp_path):
    """Held-out names are scored lower with their own country than with the other one."""
    task = cond_task(write_names(tmp_path))
    fit(task, tmp_path / "run", steps=60)
    m = task.evaluate()
    assert m["val_loss"] < m["val_loss_wrong_cond"]
