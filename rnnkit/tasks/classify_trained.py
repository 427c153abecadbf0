"""A trained classifier: the run's checkpoint read back (older ones upgraded), texts in, labels
and class probabilities out (``rnnkit predict``), and :func:`evaluate_file`, which scores a run
on any labelled file (``rnnkit eval``, ``predict --eval``)."""
import torch

from rnnkit.data import DataError
from rnnkit.data.text import blank
from rnnkit.data.labelled import read_labelled
from rnnkit.data.vocab import Vocab
from rnnkit.models.classifier import ClassifierConfig, SequenceClassifier, gram_space
from rnnkit.tasks import api_inputs
from rnnkit.tasks.classify import EVAL_BATCH, EVAL_TOKENS
from rnnkit.tasks.classify_labels import check_labels, given_classes
from rnnkit.tasks.classify_text import TextEncoder, batch
from rnnkit.tasks.common import length_chunks, warn_unknown
from rnnkit.tasks.metrics import accuracy, f1_report, macro_f1
from rnnkit.train.checkpoint import built_from, check_sizes, load_checkpoint


SAVED_BEFORE = {"ngrams": 1, "bag": "off", "average": 0.0, "bag_counts": "all",
                "linear_start": False, "rnn_len": 0, "blend": False,
                "prior_shift": False, "char_grams": 0}


def upgrade(ckpt):
    """A checkpoint with the model settings of the version that saved it: runs from before
    n-grams, the bag, weight averaging or the bag's once-a-text counts had none of them (it
    counted every n-gram)."""
    return {**ckpt, "model_config": {**SAVED_BEFORE, **ckpt["model_config"]}}


def evaluate_file(run, path):
    """Score a trained run (folder or checkpoint) on a labelled TSV/CSV file: accuracy,
    macro-F1 and size. A label the model never saw is a DataError naming the file and line; a
    run trained with ``--classes`` reads those labels only, as its training did."""
    clf = Classifier.load(run)
    examples = read_labelled(path, with_lines=True, least=1, classes=clf.classes)
    examples = check_labels(examples, clf.labels, path)
    warn_unknown(path, [w for _, t, _ in examples for w in clf.encoder.split(t)],
                 clf.encoder.vocab.stoi)
    logp = clf.log_probs([t for _, t, _ in examples], str(path))               # (N, K)
    gold = [l for l, _, _ in examples]
    index = {label: k for k, label in enumerate(clf.labels)}
    loss = -float(logp[torch.arange(len(gold)), [index[l] for l in gold]].mean())
    pred = [clf.labels[k] for k in logp.argmax(1).tolist()]
    return {"file": str(path), "kind": "classify", "size": len(gold), "loss": loss,
            "accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred),
            "per_class": f1_report(gold, pred)}


class Classifier:
    """A trained classifier for prediction: text in, label and class probabilities out."""

    def __init__(self, model, encoder, labels):
        self.model, self.encoder, self.labels = model.eval(), encoder, labels
        self.classes = None     # the run's --classes: the labels eval reads from a file

    @classmethod
    def from_task(cls, task):
        return cls(task.model, task.encoder, task.labels)

    @classmethod
    def load(cls, path):
        """The classifier of a run folder (best.pt) or checkpoint file. Checkpoints written before
        character tokens were word-level, without n-grams, cut at max_len words; those before
        the bag-of-n-grams term had none, those before weight averaging predict with their
        trained weights, those before the bag counted each n-gram once count them all."""
        ckpt = load_checkpoint(path, kind="classify")
        with built_from(path):
            config = ClassifierConfig(**upgrade(ckpt)["model_config"])
            model = SequenceClassifier(config)
            model.load_state_dict(ckpt["model"])
            check_sizes(("labels", ckpt["labels"], config.num_classes, "labels"),
                        ("vocabulary", ckpt["vocab"].get("tokens"), config.vocab_size, "tokens"))
            model = model.averaged()   # the weights that validation picked best.pt with
            encoder = TextEncoder(Vocab.from_dict(ckpt["vocab"]), ckpt.get("tokens", "word"),
                                  ckpt.get("max_len", ckpt["data_config"]["max_len"]),
                                  config.ngrams, gram_space(config), config.char_grams,
                                  ckpt.get("word_form", 1))   # (1: the words of older runs)
            out = cls(model, encoder, ckpt["labels"])
            out.classes = given_classes(ckpt["data_config"].get("classes", ""))
            return out

    @property
    def tokens(self):
        return self.encoder.tokens

    def predict(self, texts, where="input"):
        """[(label, {label: probability}), ...] for each text; an empty text raises DataError
        naming ``where`` and the text's position (1-based)."""
        probs = self.log_probs(texts, where).exp()
        return [(self.labels[int(p.argmax())], dict(zip(self.labels, p.tolist())))
                for p in probs]

    @torch.no_grad()
    def log_probs(self, texts, where="input"):
        """(N, K) log-probabilities of the classes for each text, as :meth:`predict` reads
        them."""
        encoded = []
        for i, text in enumerate(api_inputs.texts(texts), 1):
            e = self.encoder(text)
            if not e[0] or blank(text):
                raise DataError(f"{where}:{i}: empty text (nothing to classify)")
            encoded.append(e)
        if not encoded:
            return torch.empty(0, len(self.labels))
        order, parts = [], []
        for r in length_chunks([len(ids) for ids, _ in encoded], EVAL_BATCH, EVAL_TOKENS):
            order += r
            parts.append(torch.log_softmax(self.model(*batch([encoded[i] for i in r])), dim=1))
        out = torch.cat(parts)
        return out[torch.tensor(order).argsort()]
