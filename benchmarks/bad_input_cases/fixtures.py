"""Tiny valid data for every task, the flags of the tiny base runs, and the commands that use a
run of each kind: what the bad-input cases start from and then break."""
import random

ENGLISH = ("ROMEO.\nBut soft, what light through yonder window breaks?\n\n"
           "JULIET.\nO Romeo, Romeo, wherefore art thou Romeo?\n\n") * 12
POS = ["a good film", "great fun and good acting", "a fine warm story", "good good great",
       "warm and fine", "great acting"]
NEG = ["a bad film", "awful and dull acting", "a poor cold story", "bad bad awful",
       "cold and dull", "poor acting"]
TAGGED = ["the/D cat/N sat/V", "a/D dog/N ran/V fast/R", "the/D big/A dog/N sat/V",
          "a/D cat/N ran/V", "dogs/N ran/V fast/R", "the/D small/A cat/N slept/V"]
WORDS = {"ich": "I", "du": "you", "sehe": "see", "den": "the", "hund": "dog", "die": "the",
         "katze": "cat", "ein": "a", "haus": "house", "rot": "red"}
NAMES = {"Italy": ["Marco", "Giulia", "Luca", "Francesca", "Matteo", "Chiara", "Paolo", "Sofia"],
         "Japan": ["Hiroshi", "Yuki", "Kenji", "Sakura", "Haruto", "Aiko", "Takeshi", "Emi"]}


def labelled_rows():
    return [("positive", t) for t in POS] * 4 + [("negative", t) for t in NEG] * 4


def conllu(sentences):
    blocks = []
    for s in sentences:
        rows = [f"{i}\t{w}\t_\t{t}\t_\t_\t_\t_\t_\t_"
                for i, (w, t) in enumerate((tok.rsplit("/", 1) for tok in s.split()), 1)]
        blocks.append("\n".join(rows))
    return "\n\n".join(blocks) + "\n"


def pairs_text(n=240):
    r = random.Random(0)
    lines = []
    for _ in range(n):
        src = r.sample(sorted(WORDS), 3)
        lines.append(" ".join(src) + "\t" + " ".join(WORDS[w] for w in src))
    return "\n".join(lines) + "\n"


def names_text(features=False):
    feats = {"Italy": "1,0", "Japan": "0,1"}
    return "".join(f"{feats[c] if features else c}\t{n}{'o' * (k % 3)}\n" for k in range(4)
                   for c, names in NAMES.items() for n in names)


def series_rows(n=120, value=lambda t: f"{10 + 5 * ((t % 12) - 6) ** 2 / 36 + 0.05 * t:.4f}"):
    return [f"{2000 + t // 12}-{t % 12 + 1:02d},{value(t)}" for t in range(n)]


def series_text(n=120, **kw):
    return "month,value\n" + "\n".join(series_rows(n, **kw)) + "\n"


FIXTURES = {
    "corpus.txt": ENGLISH,
    "labels.tsv": "\n".join(f"{l}\t{t}" for l, t in labelled_rows()) + "\n",
    "labels.csv": "label,text\n" + "\n".join(f'{l},"{t}"' for l, t in labelled_rows()) + "\n",
    "tagged.txt": "\n".join(TAGGED * 6) + "\n",
    "tagged.conllu": conllu(TAGGED * 6),
    "pairs.tsv": pairs_text(),
    "names.tsv": names_text(),
    "features.tsv": names_text(features=True),
    "series.csv": series_text(),
}

# Tiny models on the fixtures: each base run and each flag case trains in seconds.
BASE = {
    "lm": ["--data", "corpus.txt", "--seq-len", "16", "--batch", "4", "--layers", "1",
           "--hidden", "16", "--embed", "8"],
    "classify": ["--data", "labels.tsv", "--hidden", "8", "--embed", "8", "--batch", "8",
                 "--buckets", "64", "--bag-buckets", "64"],
    "tag": ["--data", "tagged.txt", "--hidden", "8", "--embed", "8", "--char-embed", "4",
            "--char-hidden", "4", "--batch", "8", "--min-count", "1"],
    "forecast": ["--data", "series.csv", "--window", "12", "--horizon", "3", "--layers", "1",
                 "--hidden", "8", "--batch", "8"],
    "seq2seq": ["--data", "pairs.tsv", "--embed", "8", "--enc-hidden", "8", "--hidden", "8",
                "--batch", "16", "--val-pairs", "8", "--val-decode", "4", "--test-pairs", "4",
                "--beam-size", "2"],
    "cond": ["--data", "names.tsv", "--hidden", "8", "--embed", "4", "--cond-size", "4",
             "--batch", "16", "--val-pairs", "16"],
}
STEPS = ["--max-steps", "2", "--eval-every", "1", "--warmup-steps", "0", "--quiet"]
BASE_STEPS = ["--max-steps", "3", "--eval-every", "1", "--warmup-steps", "0", "--quiet"]
# Commands that use each kind of run, for damaged checkpoints and confused run folders.
USE = {"lm": ["sample", "{run}", "--length", "5"],
       "classify": ["predict", "{run}", "a good film"],
       "tag": ["tag", "{run}", "the cat sat"],
       "forecast": ["forecast", "{run}", "--steps", "3", "--png", "{tmp}/f.png"],
       "seq2seq": ["translate", "{run}", "ich sehe den hund", "--beam-size", "2"],
       "cond": ["sample", "{run}", "--cond", "Italy", "-n", "2"]}
