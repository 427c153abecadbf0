"""Damaged checkpoints: flipped bytes, truncated, foreign or code-running pickles, and re-signed
ones whose settings or weights are wrong; none may be trusted or run code."""
import os
import pickle
import re
import struct
import zipfile

from .harness import COPY, Skip, case, expand_use


class Evil:
    """A pickle that runs a shell command when unpickled: a loader must refuse it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def storages(path):
    """[(name, offset, size)] of the tensor storages in a torch zip file, in storage order."""
    if not zipfile.is_zipfile(path):
        return []
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for i in z.infolist():
            if re.search(r"/data/\d+$", i.filename) and i.compress_type == zipfile.ZIP_STORED:
                f.seek(i.header_offset)
                n, m = struct.unpack("<HH", f.read(30)[26:30])
                out.append((i.filename, i.header_offset + 30 + n + m, i.file_size))
    return sorted(out, key=lambda s: int(s[0].rsplit("/", 1)[1]))


def flip(nbytes=64, bit=False, which="first"):
    """A damage: XOR ``nbytes`` bytes (or one low bit) in the middle of a tensor's data -- the
    first storage (a model weight) or the last (optimizer or RNG state); not a zip file: at 3/4."""
    def damage(path):
        data = bytearray(path.read_bytes())
        spans = [s for s in storages(path) if s[2] >= 64]
        if spans:
            _, offset, size = spans[0] if which == "first" else spans[-1]
            at = offset + size // 2 - nbytes // 2
        else:
            at = len(data) * 3 // 4
        for k in range(at, at + (1 if bit else nbytes)):
            data[k] ^= 0x01 if bit else 0xFF
        path.write_bytes(bytes(data))
    return damage


def truncate(fraction):
    return lambda path: path.write_bytes(path.read_bytes()[:int(path.stat().st_size * fraction)])


def replace_bytes(old, new):
    """Edit bytes inside the pickle (the settings) without a new digest: 'lstm' -> 'lsTm'."""
    def damage(path):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith("data.pkl"))
        raw = path.read_bytes()
        if old not in raw:
            raise Skip(f"{old!r} not found in {path.name} ({name})")
        path.write_bytes(raw.replace(old, new, 1))
    return damage


def torch_save(make):
    """A damage replacing the file with ``torch.save(make(path))``."""
    def damage(path):
        import torch
        torch.save(make(path), path)
    return damage


def raw_pickle(make):
    def damage(path):
        path.write_bytes(pickle.dumps(make(path), protocol=2))
    return damage


def resigned(change):
    """A damage that edits the loaded checkpoint and saves it again with rnnkit's own writer,
    so the file is intact and only its content is wrong (a valid digest over bad settings)."""
    def damage(path):
        from rnnkit.train.checkpoint import load_checkpoint, save_checkpoint
        ck = load_checkpoint(path)
        change(ck)
        for k in ("format", "version", "digest"):
            ck.pop(k, None)
        save_checkpoint(path, ck)
    return damage


def raw_saved(change):
    """A damage that saves the loaded checkpoint again with plain torch.save (no new digest)."""
    def damage(path):
        import torch
        from rnnkit.train.checkpoint import load_checkpoint
        ck = load_checkpoint(path)
        change(ck)
        torch.save(ck, path)
    return damage


def set_config(section, key, value):
    return lambda ck: ck[section].__setitem__(key, value)


def first_weight(fn):
    def change(ck):
        k = next(iter(ck["model"]))
        ck["model"][k] = fn(ck["model"][k])
    return change


def damaged(kind, filename, damage):
    """A setup copying the base run of ``kind`` and damaging its ``filename``; the bytes of
    every checkpoint after the damage are kept for the check."""
    def setup(c):
        run = c.copy(kind)
        before = (run / filename).read_bytes()
        damage(run / filename)
        if (run / filename).read_bytes() == before:
            raise Skip(f"the damage left {filename} unchanged")
        c.state["files"] = {p.name: p.read_bytes() for p in run.glob("*.pt")}
    return setup


def not_executed(c, ran):
    if c.marker.exists():
        return "CODE RAN: the pickle's command created its marker file"
    return None


def checkpoints_untouched(kind):
    def check(c, ran):
        now = {p.name: p.read_bytes() for p in (c.tmp / kind).glob("*.pt")}
        if now != c.state.get("files"):
            return "a checkpoint was rewritten from the damaged one"
        return None
    return check


def ck_case(kind, name, damage, filename="best.pt", argv=None, check=None, mention=None, **kw):
    case("checkpoint", f"{kind}: {name}", argv or [expand_use(kind, COPY(kind))], "error",
         setup=damaged(kind, filename, damage), check=check,
         mention=mention or (filename,), **kw)


def add_checkpoint_cases():
    ck_case("lm", "64 bytes flipped in a weight's data", flip(64))
    ck_case("lm", "one bit flipped in a weight's data", flip(1, bit=True))
    ck_case("lm", "64 bytes flipped in the optimizer/RNG state", flip(64, which="last"))
    ck_case("lm", "settings edited in the pickle (lstm -> lsTm)", replace_bytes(b"lstm", b"lsTm"))
    ck_case("lm", "truncated to half", truncate(0.5))
    ck_case("lm", "a foreign torch file ({'w': tensor})",
            torch_save(lambda p: {"w": __import__("torch").zeros(3)}))
    ck_case("lm", "a whole pickled nn.Module",
            torch_save(lambda p: __import__("torch").nn.Linear(2, 2)))
    ck_case("lm", "a torch file whose pickle runs a command",
            torch_save(lambda p: {"format": "rnnkit-checkpoint", "version": 2,
                                  "model": Evil(p.parent.parent / "EXECUTED")}),
            check=not_executed)
    ck_case("lm", "a plain pickle that runs a command",
            raw_pickle(lambda p: Evil(p.parent.parent / "EXECUTED")), check=not_executed)
    ck_case("lm", "version 99", raw_saved(lambda ck: ck.update(version=99)))
    ck_case("lm", "digest removed", raw_saved(lambda ck: None))
    ck_case("lm", "config hidden=10**9 (re-signed)",
            resigned(set_config("model_config", "hidden", 10**9)), mention=("hidden",))
    ck_case("lm", "config hidden=-4 (re-signed)",
            resigned(set_config("model_config", "hidden", -4)), mention=("hidden",))
    ck_case("lm", "config cell='nope' (re-signed)",
            resigned(set_config("model_config", "cell", "nope")), mention=("cell",))
    ck_case("lm", "vocabulary 3 tokens short (re-signed)",
            resigned(lambda ck: ck["vocab"].update(tokens=ck["vocab"]["tokens"][:-3])))
    ck_case("lm", "a weight missing (re-signed)",
            resigned(lambda ck: ck["model"].pop(next(iter(ck["model"])))))
    ck_case("lm", "a weight of the wrong shape (re-signed)",
            resigned(first_weight(lambda t: t.new_zeros(2, 2))))
    ck_case("lm", "NaN weights (re-signed)", resigned(first_weight(lambda t: t * float("nan"))))
    ck_case("lm", "kind set to classify (re-signed), used by predict",
            resigned(lambda ck: ck.update(kind="classify")),
            argv=["predict", COPY("lm"), "a good film"])
    resume = lambda *a: ["train", "lm", "--out", COPY("lm"), "--resume", "--max-steps", "6",
                         "--quiet", *a]
    ck_case("lm", "--resume from last.pt with 64 bytes flipped", flip(64), "last.pt",
            argv=resume(), check=checkpoints_untouched("lm"))
    ck_case("lm", "--resume from last.pt with the RNG/optimizer state flipped",
            flip(64, which="last"), "last.pt", argv=resume(), check=checkpoints_untouched("lm"))
    ck_case("lm", "--resume: last.pt train config lr=-1 (re-signed)",
            resigned(set_config("train_config", "lr", -1.0)), "last.pt", argv=resume(),
            mention=("lr",))
    ck_case("lm", "--resume: last.pt data config batch=0 (re-signed)",
            resigned(set_config("data_config", "batch", 0)), "last.pt", argv=resume(),
            mention=("batch",))
    for kind in ("classify", "tag", "forecast", "seq2seq", "cond"):
        ck_case(kind, "64 bytes flipped in a weight's data", flip(64))
        if kind == "seq2seq":
            ck_case(kind, "truncated to half", truncate(0.5))
        ck_case(kind, "config hidden=10**9 (re-signed)",
                resigned(set_config("model_config", "hidden", 10**9)), mention=("hidden",))
