"""The classifier's labels as its data give them: ``--classes`` (the ones read, the rest
left out), labels that read as no label at all, and a held-out file's labels against the run's.
"""
import unicodedata
from pathlib import Path

from rnnkit.config import ConfigError
from rnnkit.data import DataError
from rnnkit.data.labelled import read_labelled
from rnnkit.tasks.common import warn


# labels that say "no label": R's and pandas' missing values, aclImdb's unlabelled reviews
NO_LABEL = {"na", "nan", "n/a", "#n/a", "null", "none", "unsup", "unlabeled", "unlabelled"}


def warn_unlabelled(path, examples, labels):
    """A warning for each label that reads as no label at all (trained as a class of its own)."""
    for label in labels:
        if label.strip().casefold() in NO_LABEL:
            n = sum(l == label for l, _ in examples)
            warn(f"{path}: {n:,} example{'s' * (n != 1)} labelled {label!r}, which reads as no "
                 f"label (a missing value, or unlabelled texts), are trained as a class of their "
                 f"own; --classes names the classes to read")


def given_classes(text):
    """The labels of ``--classes a,b`` (None for ''): at least two, each once."""
    if not text.strip():
        return None
    names = [n.strip() for n in text.split(",")]
    if "" in names or len(set(names)) != len(names) or len(names) < 2:
        raise ConfigError(f"--classes {text!r}: expected two or more distinct labels separated "
                          f"by commas, e.g. neg,pos")
    return names


def read_classes(path, classes, flag, log):
    """The training examples, of ``classes`` only where given (a folder's other class folders
    are not read); the labels passed over are said, a class with no example is a DataError."""
    if not classes:
        return read_labelled(path)
    if path.is_dir():
        found = {p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")}
        examples = read_labelled(path, classes=classes) if set(classes) <= found else []
        if found - set(classes):
            log(f"--classes {flag}: passed over the class folders "
                f"{', '.join(sorted(found - set(classes)))}")
    else:
        every = read_labelled(path, least=1)
        found, examples = {l for l, _ in every}, only_classes(every, classes, flag, path, log)
    if set(classes) - found:
        raise DataError(f"{path}: --classes {flag}: no example of "
                        f"{', '.join(sorted(set(classes) - found))}; the labels there: "
                        f"{sorted(found)}")
    return examples


def only_classes(rows, classes, flag, where, log):
    """The rows (label first) of ``classes``; how many others were passed over is said."""
    kept = [r for r in rows if r[0] in classes]
    others = sorted({r[0] for r in rows} - set(classes))
    if others:
        log(f"--classes {flag}: passed over {len(rows) - len(kept):,} of {where}'s "
            f"{len(rows):,} examples ({', '.join(others[:5])}{', ...' * (len(others) > 5)})")
    return kept


def check_labels(examples, labels, path):
    """``examples`` with a label that is one of ``labels`` in another Unicode form (NFD "xấu",
    NFC "xấu": the same text, other code points) given as the model's; a DataError naming the
    file and line of the first label the model was not trained on."""
    known = {unicodedata.normalize("NFC", l): l for l in labels}
    out = []
    for label, text, line in examples:
        if label not in labels:
            label = known.get(unicodedata.normalize("NFC", label), label)
        if label not in labels:   # a folder of class folders: the class folder, not a line
            where = Path(path) / label if Path(path).is_dir() else f"{path}:{line}"
            raise DataError(f"{where}: unknown label {label!r}; the model knows {labels}")
        out.append((label, text, line))
    return out
