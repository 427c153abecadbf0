"""The 1→N generator learns to use its condition; the train/save/load contract for it and for
Seq2Seq lives in test_task_contract.py."""
import json

import pytest

from rnnkit.train import Checkpointer, TrainConfig, Trainer

from seq2seq_fixtures import cond_task


def test_condition_matters_after_training(tmp_path):
    """Held-out names are scored lower with their own country than with the other one."""
    task = cond_task(tmp_path)
    first = task.evaluate()
    config = TrainConfig(lr=1e-2, max_steps=60, eval_every=30, warmup_steps=0, seed=0)
    Trainer(task, config, [Checkpointer(tmp_path / "run")]).fit()
    m = task.evaluate()
    assert m["val_loss"] < first["val_loss"]
    assert m["val_loss"] < m["val_loss_wrong_cond"]
    rows = [json.loads(l) for l in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert "val_loss_wrong_cond" in rows[-1]


def test_feature_condition_from_the_command_line_checked():
    from rnnkit.data import DataError
    from rnnkit.tasks.cond import Conditions
    c = Conditions(features=2)
    assert c.encode("0.5, -1") == [0.5, -1.0]
    for bad in ("nan,1", "1", "1,2,3", "1e39,0", "a,b"):
        with pytest.raises(DataError, match="expected 2 finite numbers"):
            c.encode(bad)


def test_generation_never_offers_pad_bos_or_unk(tmp_path):
    """No training sequence holds <pad>, <s> or <unk>: sampling and beam search never emit them,
    even from a model whose output favours them."""
    import torch
    from rnnkit.data.pairs import BOS_ID, PAD_ID, UNK_ID
    from rnnkit.tasks.cond import generate, most_likely
    task = cond_task(tmp_path)
    model = task.model.eval()
    with torch.no_grad():
        model.head.bias[[PAD_ID, BOS_ID, UNK_ID]] += 50.0   # the three all but certain unmasked
    names = generate(model, task.vocab, task.conditions, "Italy", 20, temperature=1.0, seed=1)
    names += most_likely(model, task.vocab, task.conditions, "Italy", 3, 4)
    assert len(names) == 23 and all(names)
    assert not any(special in s for s in names for special in ("<unk>", "<s>", "<pad>"))


def test_a_prime_starts_every_sequence_and_length_caps_them(tmp_path):
    from rnnkit.data import DataError
    from rnnkit.tasks.cond import generate, most_likely
    task = cond_task(tmp_path)
    model, vocab, conditions = task.model.eval(), task.vocab, task.conditions
    letter = next(t for t in vocab.itos[4:] if t.isalpha())
    names = generate(model, vocab, conditions, "Italy", 5, seed=1, prime=letter, length=3)
    names += most_likely(model, vocab, conditions, "Italy", 2, 3, prime=letter, length=3)
    assert all(s.startswith(letter) and 1 <= len(s) <= 4 for s in names), names
    with pytest.raises(DataError, match="token\\(s\\) no training sequence holds"):
        generate(model, vocab, conditions, "Italy", 2, prime="\u2603")
    with pytest.raises(DataError, match=r"at most 19 \(its max_len=20 counts </s>\)"):
        generate(model, vocab, conditions, "Italy", 2, prime=letter * 19)
    # max_len counts </s> when sampling too: never a sequence training would have left out
    unended = generate(model, vocab, conditions, "Italy", 6, seed=3, temperature=50.0)
    assert max(map(len, unended)) <= 19


def test_no_wrong_condition_is_made_up_where_there_is_none():
    """Feature vectors all alike (or one class): no other condition to compare with, so the
    wrong-condition loss is None rather than the right one's; otherwise every row gets a
    different condition than its own."""
    import torch
    from types import SimpleNamespace
    from rnnkit.tasks.cond import wrong_conditions
    features = SimpleNamespace(config=SimpleNamespace(features=2, n_classes=0))
    same = torch.tensor([[0.0, 1.0]] * 4)
    assert wrong_conditions(features, same, range(4)) is None
    mixed = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [2.0, 2.0]])
    assert not (wrong_conditions(features, mixed, range(4)) == mixed).all(1).any()
    labels = SimpleNamespace(config=SimpleNamespace(features=0, n_classes=3))
    cond = torch.tensor([0, 1, 2, 2, 1])
    assert (wrong_conditions(labels, cond, range(5)) != cond).all()
    assert wrong_conditions(SimpleNamespace(config=SimpleNamespace(features=0, n_classes=1)),
                            torch.zeros(3, dtype=torch.long), range(3)) is None


def test_the_wrong_condition_gain_does_not_depend_on_the_order_of_the_examples():
    """Each example's wrong label was picked by its position: the same three lines in another
    order scored a gain of 1.715 nats where they had scored 2.154."""
    import torch
    from rnnkit.models.conditional import CondConfig, ConditionalGenerator
    from rnnkit.tasks.cond import Conditions, condition_losses
    torch.manual_seed(0)
    model = ConditionalGenerator(CondConfig(vocab_size=12, n_classes=4, hidden=8, embed=4,
                                            cond_size=4)).eval()
    conditions = Conditions(["w", "x", "y", "z"])
    encoded = [(i % 4, [4 + (i * 7 + j) % 8 for j in range(2 + i % 5)]) for i in range(9)]
    forward = condition_losses(model, conditions, encoded, batch=4)
    backward = condition_losses(model, conditions, encoded[::-1], batch=4)
    assert forward == pytest.approx(backward, rel=1e-6)


def test_vectors_as_written_and_a_bad_line_among_them(tmp_path):
    """'[0.1, 0.5]' and one stray line among vectors turned every vector into its own label."""
    from rnnkit.data import DataError
    from rnnkit.data.feature_vectors import feature_rows, numbers
    from rnnkit.tasks.cond import Conditions
    assert numbers("[0.5, -1]") == numbers("0.5;-1") == numbers("0.5 -1") == [0.5, -1.0]
    assert numbers("(1)") is None and numbers(",") is None
    # a spreadsheet's decimal commas between semicolons were read as 4 numbers, said nowhere
    with pytest.raises(DataError, match=r"^d.tsv:3: '0,71;0,31' reads two ways: decimal commas"):
        feature_rows(["0,71;0,31", "1,5;-2,0"], "d.tsv", [3, 4])
    matrices = feature_rows(["[1,0;0,1]", "[0,1;1,0]"], "m.tsv", [1, 2])  # MATLAB's: 4 each
    assert matrices.tolist() == [[1, 0, 0, 1], [0, 1, 1, 0]]
    assert feature_rows(["1,2;3", "4,5;6"], "m.tsv", [1, 2]).shape == (2, 3)
    # one decimal comma or a thousands separator a line was read as 2 numbers: [0, 10], [1, 0]
    for rows in (["0,10", "0,47"], ["1,000", "1,007"]):
        with pytest.raises(DataError, match=rf"^e.tsv:5: '{rows[0]}' reads three ways: a "
                                            rf"decimal comma, a thousands separator or two"):
            feature_rows(rows, "e.tsv", [5, 6])
    assert feature_rows(["[0,10]", "[0,47]"], "e.tsv", [5, 6]).shape == (2, 2)
    assert feature_rows(["0, 10", "0, 47"], "e.tsv", [5, 6]).shape == (2, 2)
    assert Conditions(features=2).encode("[0.5, -1]") == [0.5, -1.0]
    rows = [f"[{i / 10}, {i % 3}]" for i in range(20)]
    assert feature_rows(rows, "v.tsv", list(range(1, 21))).shape == (20, 2)
    with pytest.raises(DataError, match=r"^v.tsv:7: expected a feature vector of numbers, as 19 "
                                        r"of the 20 lines hold, got '0.5,oops'"):
        feature_rows(rows[:6] + ["0.5,oops"] + rows[7:], "v.tsv", list(range(1, 21)))
    years = ["1990", "1991", "n/a"] * 7                  # whole numbers and a word: labels
    assert feature_rows(years, "y.tsv", list(range(1, 22))) is None


def test_sequences_past_max_len_are_counted_in_a_warning(tmp_path, capsys):
    """Training pairs longer than --max-len were dropped without a word."""
    from rnnkit.data import DataError
    from rnnkit.models.conditional import CondConfig
    from rnnkit.tasks.cond import CondData, build_cond_task
    path = tmp_path / "names.tsv"
    path.write_text("".join(f"{c}\t{'ab' * (1 + i % 4)}{chr(97 + i % 26) * (i % 7)}\n"
                            for i in range(200) for c in "xy"))
    short = tmp_path / "short.tsv"
    short.write_text("x\tabab\ny\tbaba\n")
    build_cond_task(CondData(data=str(path), batch=4, val_data=str(short)),
                    CondConfig(hidden=8, embed=4, cond_size=4, max_len=8), log=lambda *a: None)
    err = capsys.readouterr().err
    assert "sequence(s) of" in err and "longer than 7 tokens (--max-len 8 counts </s>" in err
    long = tmp_path / "long.tsv"
    long.write_text("x\tabababababab\ny\tbababababa\n")
    with pytest.raises(DataError, match=r"every one of the 2 validation sequences is longer "
                                        r"than 7 tokens .* nothing to score on"):
        build_cond_task(CondData(data=str(path), batch=4, val_data=str(long)),   # was loss 0.0
                        CondConfig(hidden=8, embed=4, cond_size=4, max_len=8),
                        log=lambda *a: None)


def test_a_run_given_to_another_command_names_the_one_that_reads_it(tmp_path):
    from rnnkit.train import CheckpointError, load_checkpoint
    task = cond_task(tmp_path)
    Trainer(task, TrainConfig(max_steps=1, eval_every=1, warmup_steps=0),
            [Checkpointer(tmp_path / "run")]).fit()
    with pytest.raises(CheckpointError, match=r"expected a 'classify' checkpoint, got kind "
                                              r"'cond' \(rnnkit sample reads it\)"):
        load_checkpoint(tmp_path / "run" / "best.pt", kind="classify")


def test_held_out_labels_that_training_lacks_are_warned_about(tmp_path, capsys):
    from rnnkit.models.conditional import CondConfig
    from rnnkit.tasks.cond import CondData, build_cond_task
    from rnnkit.data.pairs import split_of
    held = next(f"zq{i}" for i in range(1000) if split_of(f"zq{i}") != "train")
    path = tmp_path / "names.tsv"
    path.write_text("".join(f"{c}\tab{'c' * (i % 5)}{chr(97 + i % 26)}{i}\n"
                            for i in range(100) for c in "xy") + f"z\t{held}\n")
    build_cond_task(CondData(data=str(path), batch=4), CondConfig(hidden=8, embed=4, cond_size=4),
                    log=lambda *a: None)
    assert "1 validation or test pair(s) have a label no training pair has (e.g. 'z')" in \
        capsys.readouterr().err
