"""Sequence accuracy and token error rate on hand-worked examples, and how a translation is cut
into the tokens it is scored on."""
import pytest

from rnnkit.tasks.metrics import edit_distance, sequence_accuracy, token_error_rate
from rnnkit.tasks.translation import output_scores, scoring_tokens


def test_edit_distance_counts_insertions_deletions_substitutions():
    assert edit_distance("kitten", "sitting") == 3          # k->s, e->i, +g
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance(["AH0", "B"], ["AH0", "B"]) == 0


def test_sequence_accuracy_is_exact_match_of_the_whole_output():
    assert sequence_accuracy(["abc", "ab", ""], ["abc", "abd", "x"]) == pytest.approx(1 / 3)
    assert sequence_accuracy([[], ["a"]], [[], ["a"]]) == 1.0            # empty equals empty
    assert sequence_accuracy([], []) == 0.0
    with pytest.raises(ValueError, match="as many outputs as references, got 1 and 2"):
        sequence_accuracy(["a"], ["a", "b"])


def test_token_error_rate_is_corpus_edits_over_reference_tokens():
    assert token_error_rate([["a", "b"]], [["a", "c", "b"]]) == pytest.approx(1 / 3)   # 1 deletion
    assert token_error_rate([[]], [["a", "b"]]) == 1.0                  # empty output: all deleted
    assert token_error_rate([["a", "x", "b", "y"]], [["a", "b"]]) == 1.0   # insertions: above 0
    # corpus-level: (0 + 1) edits over (1 + 1) reference tokens, not the mean of 0 and 1
    assert token_error_rate([["a"], ["b", "c"]], [["a"], ["b"]]) == pytest.approx(1 / 2)
    assert token_error_rate([["a", "b"], []], [["a", "b", "c", "d"], ["e"]]) == pytest.approx(3 / 5)
    assert token_error_rate([["a"]], [[]]) == 1.0                       # no reference tokens


def test_word_tokens_drop_the_spaces_and_char_tokens_keep_them():
    assert scoring_tokens("the  cat, sat", "word") == ["the", "cat", ",", "sat"]
    assert scoring_tokens("a b", "char") == ["a", " ", "b"]
    # an output's <unk> is one token of the vocabulary, not '<', 'unk', '>' (three edits)
    assert scoring_tokens("the <unk> dog", "word") == ["the", "<unk>", "dog"]
    assert scoring_tokens("a<unk>b", "char") == ["a", "<unk>", "b"]
    # a run whose vocabulary splits a word's marks off (form 1) is scored on its own tokens
    assert scoring_tokens("फिल्म थी", "word") == ["फिल्म", "थी"]
    assert scoring_tokens("फिल्म थी", "word", form=1) == ["फ", "ि", "ल", "्", "म", "थ", "ी"]


def test_output_scores_of_word_and_char_targets():
    m = output_scores(["the  cat sat", ""], ["the cat sat", "a dog"], "word", "greedy")
    assert m["seq_acc_greedy"] == 0.5                 # a doubled space is not a word error
    assert m["ter_greedy"] == pytest.approx(2 / 5)    # 2 deleted words of 5
    m = output_scores(["ab", "xyz"], ["ab", "xy"], "char", "beam")
    assert m["seq_acc_beam"] == 0.5 and m["ter_beam"] == pytest.approx(1 / 4)
    assert m["cer_beam"] == m["ter_beam"] and m["bleu_beam"] >= 0


def test_bleu_of_targets_written_without_spaces_counts_their_characters():
    """13a read each Chinese sentence as one token: BLEU was 0 for two near misses."""
    from sacrebleu.metrics import BLEU
    from rnnkit.tasks.translation import bleu_tokenizer
    hyps = ["我们喜欢新世纪了", "中国人民银行宣布降息"]
    refs = ["我们喜欢新世纪", "中国人民银行今天宣布降息"]
    want = BLEU(effective_order=True, tokenize="zh").corpus_score(hyps, [refs]).score
    assert output_scores(hyps, refs, "char", "x")["bleu_x"] == pytest.approx(want) and want > 70
    assert [bleu_tokenizer([t]) for t in ("the man sees a dog", "中国人民银行", "ภาษาไทยเขียน",
                                          "わたしはねこです")] == ["13a", "zh", "char", "char"]


def test_cmudict_builder_keeps_the_first_pronunciation(tmp_path):
    from rnnkit.data.pair_sets import cmudict_pairs
    f = tmp_path / "cmudict.dict"
    f.write_text("'bout B AW1 T\nread R IY1 D\nread(2) R EH1 D\naalen AE1 L AH0 N # place, german\n"
                 "\n", encoding="utf-8")
    assert cmudict_pairs([f]).decode() == "'bout\tB AW1 T\nread\tR IY1 D\naalen\tAE1 L AH0 N\n"
