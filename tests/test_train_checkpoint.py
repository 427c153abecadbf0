"""Checkpoints: plain data only, atomic writes, damaged files rejected with a message naming them."""
import pickle

import pytest
import torch

from rnnkit.train import CheckpointError, load_checkpoint, save_checkpoint


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "vocab": {"tokens": ["a", "月"]}})
    ckpt = load_checkpoint(path)
    assert ckpt["vocab"]["tokens"] == ["a", "月"] and torch.equal(ckpt["model"]["w"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]        # no temporary left behind


def test_truncated_checkpoint_rejected(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(1000)}})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match=r"last\.pt: not a readable rnnkit checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["pickle", "garbage"])
def test_corrupted_checkpoint_rejected(tmp_path, damage):
    path = tmp_path / "best.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(1000)}, "note": "x" * 50})
    raw = bytearray(path.read_bytes())
    if damage == "pickle":      # the object record inside the zip (data.pkl) overwritten
        start = raw.index(b"data.pkl") + 8
        raw[start:start + 120] = b"\x00" * 120
    else:
        raw = bytearray(b"\x89garbage" * 100)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


class Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_pickled_objects_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "rnnkit-checkpoint", "version": 1, "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(path)


def test_foreign_file_and_missing_file(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(CheckpointError, match="without the format tag"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"n": 1})
    with pytest.raises((pickle.PicklingError, AttributeError)):   # a lambda cannot be saved
        save_checkpoint(path, {"n": 2, "bad": lambda: None})
    assert load_checkpoint(path)["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
