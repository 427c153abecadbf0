"""Named data sets and the runs that read them: two fetches of one set at once (torchrun's ranks
on a machine without the cache), and a resume that finds the set's bytes given by their path,
or a file of the set's name beside the run."""
import hashlib
import threading

import pytest

from rnnkit.cli.main import main
from rnnkit.data import datasets
from rnnkit.data.datasets import DATASETS, DataSet, fetch

from lm_fixtures import write_corpus

TINY = ["--layers", "1", "--hidden", "8", "--embed", "4", "--seq-len", "8", "--batch", "2",
        "--quiet"]


@pytest.fixture
def tinyset(tmp_path, monkeypatch):
    """A registered set whose fetch waits for every fetch to start, then builds its bytes."""
    (tmp_path / "src").mkdir()
    text = write_corpus(tmp_path / "src").read_bytes()
    started = threading.Barrier(2, timeout=10)

    def fetcher(ds, work):
        try:
            started.wait()
        except threading.BrokenBarrierError:   # a single fetch
            pass
        return [work]
    ds = DataSet("tinyset", "a tiny corpus", "tiny", "", "", "", lambda files: text,
                 "tinyset.txt", hashlib.sha256(text).hexdigest(), "")
    monkeypatch.setitem(DATASETS, "tinyset", ds)
    monkeypatch.setitem(datasets.FETCHERS, "tiny", fetcher)
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path / "cache"))
    return ds, text, started


def test_two_fetches_of_one_set_at_once_both_end_with_the_whole_file(tinyset, tmp_path):
    ds, text, started = tinyset
    for _ in range(10):
        started.reset()
        results = []

        def one():
            try:
                results.append(fetch("tinyset", force=True, log=lambda *a: None).read_bytes())
            except Exception as e:          # the other fetch moved the shared temp file away
                results.append(e)
        threads = [threading.Thread(target=one) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [text, text]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tinyset.txt"]


def test_a_resume_reads_the_set_by_name_or_its_bytes_by_path(tinyset, tmp_path, monkeypatch):
    """The name was fingerprinted as 'name:' only where no file of that name was beside the
    run (where one was, its bytes were fingerprinted, though the set was read), and the set's
    own file given by its path was 'another file'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinyset").write_text("my own notes")       # read as the set, with a warning
    run = ["train", "lm", "--out", "r", *TINY]
    assert main([*run, "--data", "tinyset", "--max-steps", "2"]) == 0
    (tmp_path / "tinyset").write_text("my own notes, edited")
    assert main([*run, "--data", "tinyset", "--max-steps", "3", "--resume"]) == 0
    (tmp_path / "tinyset").unlink()
    assert main([*run, "--data", "tinyset", "--max-steps", "4", "--resume"]) == 0
    cached = str(tmp_path / "cache" / "tinyset.txt")
    assert main([*run, "--data", cached, "--max-steps", "5", "--resume"]) == 0


def test_eval_takes_a_set_by_name_and_other_readers_say_it_is_one(tinyset, tmp_path,
                                                                   monkeypatch, capsys):
    """`rnnkit eval RUN NAME` said 'no such data file' for a set --val-data reads by name; a
    flag that takes files only said 'cannot read the file' for a set's name."""
    monkeypatch.chdir(tmp_path)
    assert main(["train", "lm", "--data", "tinyset", "--out", "r", "--max-steps", "2",
                 *TINY]) == 0
    capsys.readouterr()
    assert main(["eval", "r", "tinyset", "--json"]) == 0
    import json
    got = json.loads(capsys.readouterr().out)
    assert got["kind"] == "lm" and got["file"].endswith("tinyset.txt") and got["loss"] > 0
    from rnnkit.data import DataError
    from rnnkit.data.text import read_text
    with pytest.raises(DataError, match=r"^tinyset: cannot read the file: No such file or "
                                        r"directory \(tinyset names a data set, which is read by "
                                        r"name only where the flag's help lists its kind; "
                                        r"`rnnkit data fetch tinyset` prints its file\)$"):
        read_text("tinyset")


def test_a_flag_that_reads_files_only_fingerprints_the_file_of_a_sets_name(tinyset, tmp_path,
                                                                          monkeypatch):
    """classify's --val-data reads the file 'tinyset' beside the run, not the set: its bytes are
    what a resume must find unchanged (they were fingerprinted as the set's name)."""
    from rnnkit.cli.fingerprints import check_same_data, data_fingerprint
    from rnnkit.data import DataError
    from rnnkit.tasks.classify import ClassifyData
    from rnnkit.tasks.lm import LMData
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinyset").write_text("pos\tgood\n")
    files_only = data_fingerprint(ClassifyData(data="x.tsv", val_data="tinyset"))
    assert files_only["val_data"].startswith("sha256:")
    assert data_fingerprint(LMData(data="x.txt", val_data="tinyset"))["val_data"] == \
        "name:tinyset"
    (tmp_path / "tinyset").write_text("neg\tbad\n")
    with pytest.raises(DataError, match="the --val-data file changed"):
        check_same_data("r", files_only, data_fingerprint(ClassifyData(data="x.tsv",
                                                                      val_data="tinyset")), False)


def test_a_checkpoint_that_hashed_the_file_of_a_sets_name_resumes(tinyset, tmp_path,
                                                                  monkeypatch):
    """Before the name won, --data NAME read the set but fingerprinted a file of that name
    beside the run: such a checkpoint resumes while that file is unchanged."""
    from rnnkit.cli.fingerprints import _hash_files, check_same_data
    from rnnkit.data import DataError
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinyset").write_text("a,b\n1,2\n")
    old = {"data": "sha256:" + _hash_files([(tmp_path / "tinyset", "")])}
    check_same_data("r", old, {"data": "name:tinyset"}, False)
    (tmp_path / "tinyset").write_text("a,b\n1,3\n")
    with pytest.raises(DataError, match="the --data file changed"):
        check_same_data("r", old, {"data": "name:tinyset"}, False)


def test_a_checkpoint_that_named_a_file_of_a_sets_name_resumes_and_moves(tinyset, tmp_path,
                                                                         monkeypatch):
    """Before, classify's --val-data tinyset (a file) was fingerprinted as the set's name: such
    a checkpoint is not compared on that file (its bytes were not recorded). And such a file is
    stored by its absolute path, so a resume from another folder finds it."""
    from rnnkit.cli.fingerprints import check_same_data, data_fingerprint
    from rnnkit.tasks.classify import ClassifyData
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tinyset").write_text("pos\tgood\n")
    now = data_fingerprint(ClassifyData(data="x.tsv", val_data="tinyset"))
    check_same_data("r", {**now, "val_data": "name:tinyset"}, now, False)
    rows = "\n".join(f"{'pos' if i % 2 else 'neg'}\t{'good' if i % 2 else 'bad'} film {i}"
                     for i in range(60))
    (tmp_path / "train.tsv").write_text(rows + "\n")
    (tmp_path / "tinyset").write_text(rows + "\n")
    run = tmp_path / "run"
    flags = ["--quiet", "--hidden", "8", "--embed", "8", "--tokens", "word"]
    assert main(["train", "classify", "--data", "train.tsv", "--val-data", "tinyset", "--out",
                 str(run), "--max-steps", "2", *flags]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["train", "classify", "--out", str(run), "--resume", "--max-steps", "3",
                 "--quiet"]) == 0
