"""Tiny pair files written by the tests (no network) and tiny Seq2Seq / ConditionalGenerator tasks
and predictors on them, for the contract test and the seq2seq tests."""
import random

import torch

from rnnkit.models.conditional import CondConfig
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.tasks.cond import CondData, build_cond_task, generate, load_cond, most_likely
from rnnkit.tasks.seq2seq import Seq2SeqData, build_seq2seq_task, load_seq2seq
from rnnkit.tasks.translation import Translator

WORDS = {"ich": "I", "du": "you", "sehe": "see", "den": "the", "hund": "dog", "die": "the",
         "katze": "cat", "ein": "a", "haus": "house", "rot": "red"}
NAMES = {"Italy": ["Marco", "Giulia", "Luca", "Francesca", "Matteo", "Chiara", "Paolo", "Sofia"],
         "Japan": ["Hiroshi", "Yuki", "Kenji", "Sakura", "Haruto", "Aiko", "Takeshi", "Emi"]}
SOURCES = ["ich sehe den hund", "du sehe die katze", "ein haus rot"]


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


def seq2seq_task(tmp_path, **model):
    torch.manual_seed(0)
    cfg = Seq2SeqConfig(embed=16, enc_hidden=16, hidden=32, max_len=40, **model)
    return build_seq2seq_task(Seq2SeqData(data=str(write_pairs(tmp_path)), batch=16, val_pairs=0),
                              cfg, log=lambda *a: None)


def cond_task(tmp_path):
    torch.manual_seed(0)
    return build_cond_task(CondData(data=str(write_names(tmp_path)), batch=16, val_pairs=0),
                           CondConfig(hidden=32, embed=8, cond_size=8, max_len=20),
                           log=lambda *a: None)


def translator(task):
    return Translator(task.model.eval(), task.src_vocab, task.tgt_vocab)


def load_translator(run):
    model, src_vocab, tgt_vocab, _ = load_seq2seq(run)
    return Translator(model, src_vocab, tgt_vocab)


def translations(t):
    return {"greedy": t.greedy(SOURCES), "beam": t.beam(SOURCES[0], 3)}


def generator(task):
    return task.model.eval(), task.vocab, task.conditions


def load_generator(run):
    return load_cond(run)


def generations(g):
    return {"sampled": generate(*g, "Italy", 5, seed=3), "likely": most_likely(*g, "japan", 3, 4)}


def train_run(tmp_path, kind="seq2seq", steps=40, *flags):
    """A tiny run trained through ``rnnkit train seq2seq|cond`` -> its folder."""
    from rnnkit.cli.main import main
    data = write_pairs(tmp_path) if kind == "seq2seq" else write_names(tmp_path, 4)
    size = (["--embed", "8", "--enc-hidden", "16", "--hidden", "16", "--test-pairs", "4",
             "--beam-size", "2", "--val-decode", "8"] if kind == "seq2seq" else ["--hidden", "16"])
    run = tmp_path / f"run-{kind}"
    assert main(["train", kind, "--data", str(data), "--out", str(run), "--batch", "16",
                 "--max-steps", str(steps), "--eval-every", str(steps), "--warmup-steps", "0",
                 "--lr", "0.01", "--quiet", *size, *flags]) == 0
    return run
