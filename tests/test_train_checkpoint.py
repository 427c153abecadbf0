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


def test_paths_that_are_no_checkpoint_file_say_what_they_are(tmp_path):
    import os
    (tmp_path / "empty.pt").touch()
    os.mkfifo(tmp_path / "fifo.pt")                       # read, it would wait for a writer
    (tmp_path / "run" / "best.pt").mkdir(parents=True)
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for name, said in (("empty.pt", r"an empty file \(0 bytes\)"),
                       ("fifo.pt", "not a regular file"),
                       ("run", "best.pt: a folder; expected a checkpoint file"),
                       ("a", "not a regular file")):
        with pytest.raises(CheckpointError, match=said):
            load_checkpoint(tmp_path / name)
    data = {"kind": ["lm"]}
    save_checkpoint(tmp_path / "kind.pt", data)
    with pytest.raises(CheckpointError, match="its kind is a list, expected a task's name"):
        load_checkpoint(tmp_path / "kind.pt", kind="lm")


def test_failed_write_keeps_previous_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"n": 1})
    with pytest.raises(TypeError, match=r"the checkpoint\['bad'\] is a .*function; a "
                                        r"checkpoint holds plain data only"):
        save_checkpoint(path, {"n": 2, "bad": lambda: None})
    assert load_checkpoint(path)["n"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _tensor_data_offset(raw, values):
    """Where the bytes of a saved float32 tensor with ``values`` start inside the file."""
    return bytes(raw).index(values.numpy().tobytes())


@pytest.mark.parametrize("bit", [0, 7, 31])
def test_one_flipped_bit_in_tensor_data_refused(tmp_path, bit):
    path = tmp_path / "best.pt"
    w = torch.randn(64)
    save_checkpoint(path, {"model": {"w": w}, "step": 3})
    raw = bytearray(path.read_bytes())
    at = _tensor_data_offset(raw, w) + 4 * 10 + bit // 8
    raw[at] ^= 1 << (bit % 8)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"best\.pt: damaged checkpoint: its content does not match"):
        load_checkpoint(path)


def test_changed_setting_refused(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "model_config": {"hidden": 12345}})
    raw = path.read_bytes()
    assert raw.count(b"\x39\x30") >= 1    # 12345 as a little-endian int in the pickle
    path.write_bytes(raw.replace((12345).to_bytes(2, "little"), (12344).to_bytes(2, "little"), 1))
    with pytest.raises(CheckpointError, match="damaged checkpoint"):
        load_checkpoint(path)


def test_digest_is_of_content_not_layout():
    from rnnkit.train.checkpoint import content_digest
    a = {"w": torch.arange(6.0).reshape(2, 3).t(), "n": 1, "x": [1.5, None, "a"]}
    b = {"x": [1.5, None, "a"], "n": 1, "w": torch.arange(6.0).reshape(2, 3).t().contiguous()}
    assert content_digest(a) == content_digest(b)
    assert content_digest(a) != content_digest({**b, "n": True})            # 1 and True differ
    assert content_digest(a) != content_digest({**b, "w": b["w"].double()})  # dtype counts
    assert content_digest(a) != content_digest({**b, "x": (1.5, None, "a")})  # list vs tuple


def test_version_1_checkpoint_loads_with_a_warning(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({"format": "rnnkit-checkpoint", "version": 1, "model": {"w": torch.ones(2)}}, path)
    with pytest.warns(UserWarning, match="no content digest"):
        assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))
    torch.save({"format": "rnnkit-checkpoint", "version": 2, "model": {"w": torch.ones(2)}}, path)
    with pytest.raises(CheckpointError, match="digest is missing"):
        load_checkpoint(path)
