"""Word F1 of a B/M/E/S segmentation: spans read from any tag sequence, scored exactly."""
import pytest

from rnnkit.tasks.metrics import segmentation_f1, word_spans
from rnnkit.models.tagger import TaggerConfig
from rnnkit.tasks.tag import TagData, build_tag_task


def test_word_spans_of_well_formed_and_malformed_tags():
    assert word_spans(list("BESBME")) == [(0, 2), (2, 3), (3, 6)]
    assert word_spans(list("S")) == [(0, 1)]
    assert word_spans([]) == []
    # a model's sequence need not be well formed: words still cover the sentence, once
    assert word_spans(list("MMB")) == [(0, 2), (2, 3)]
    assert word_spans(list("BBE")) == [(0, 1), (1, 3)]
    assert word_spans(list("EEE")) == [(0, 1), (1, 2), (2, 3)]
    assert word_spans(list("bes")) == word_spans(list("BES"))


def test_segmentation_f1_counts_exact_word_matches():
    gold = [list("BESBME"), list("SS")]          # words: 2 + 1 + 3, then 1 + 1 = 5 words
    pred = [list("BESSSS"), list("BE")]          # words: 5 in the first, 1 in the second
    got = segmentation_f1(gold, pred)
    # of the 6 predicted words, [0,2) and [2,3) of the first sentence are gold words
    assert got["words"] == 5
    assert got["precision"] == pytest.approx(2 / 6) and got["recall"] == pytest.approx(2 / 5)
    assert got["f1"] == pytest.approx(2 * (2 / 6) * (2 / 5) / (2 / 6 + 2 / 5))
    assert segmentation_f1(gold, gold)["f1"] == 1.0


def test_a_segmentation_task_reports_word_f1(tmp_path):
    lines = ["迈/b 向/e 新/s 世/b 纪/e", "充/b 满/e 希/b 望/e", "的/s 新/s 年/s"] * 12  # as pd1998-seg
    path = tmp_path / "seg.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = build_tag_task(TagData(data=str(path), batch=8, min_count=1),
                          TaggerConfig(hidden=8, embed=8, char_embed=0, dropout=0.0),
                          log=lambda *a: None)
    m = task.test_metrics()
    assert 0.0 <= m["test_word_f1"] <= 1.0 and m["test_words"] > 0
    assert set(m) >= {"test_word_precision", "test_word_recall", "test_accuracy"}


def test_chunk_spans_read_iob1_and_iob2_as_conlleval_does():
    from rnnkit.tasks.metrics import chunk_spans
    # IOB2: every chunk starts at B; two chunks of one type meet at a B
    assert chunk_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]) \
        == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC")]
    # IOB1: a chunk starts at an I after O or after another type
    assert chunk_spans(["I-ORG", "O", "I-MISC", "I-PER", "I-PER", "B-PER"]) \
        == [(0, 1, "ORG"), (2, 3, "MISC"), (3, 5, "PER"), (5, 6, "PER")]
    assert chunk_spans(["O", "O"]) == [] and chunk_spans([]) == []


def test_chunk_f1_counts_span_and_type():
    from rnnkit.tasks.metrics import chunk_f1, is_chunk_tagging
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG"]]      # 3 chunks
    pred = [["B-PER", "O", "O", "B-LOC"], ["B-LOC"]]         # PER cut short, ORG typed LOC
    got = chunk_f1(gold, pred)
    assert got["chunks"] == 3 and got["precision"] == pytest.approx(1 / 3)
    assert got["recall"] == pytest.approx(1 / 3) and chunk_f1(gold, gold)["f1"] == 1.0
    assert is_chunk_tagging(["O", "B-PER", "I-PER"]) and not is_chunk_tagging(list("BMES"))
    assert not is_chunk_tagging(["NN", "O"]) and not is_chunk_tagging(["O"])


def test_a_named_entity_task_reports_chunk_f1(tmp_path):
    lines = ["EU/B-ORG rejects/O German/B-MISC call/O", "Peter/B-PER Blackburn/I-PER"] * 12
    path = tmp_path / "ner.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    task = build_tag_task(TagData(data=str(path), batch=8, min_count=1),
                          TaggerConfig(hidden=8, embed=8, char_embed=0, dropout=0.0),
                          log=lambda *a: None)
    m = task.test_metrics()
    assert 0.0 <= m["test_chunk_f1"] <= 1.0 and m["test_chunks"] > 0
    assert "test_word_f1" not in m
