"""What a recogniser cannot draw, read or write: a captcha alphabet its font has no glyph
for, scored files narrower than the time stride, and a transcript longer than its frames allow
under CTC."""
import pytest
import torch

from rnnkit.data import DataError

pytest.importorskip("captcha")


def test_a_captcha_alphabet_the_font_cannot_draw_is_refused():
    """日 and 本 were drawn as one box, and a space as nothing (a blank captcha that two
    spaces read "right")."""
    pytest.importorskip("captcha")
    from rnnkit.data.captchas import ALPHABET, check_drawable
    check_drawable(ALPHABET + "€ß")
    with pytest.raises(DataError, match="the captcha's font has no glyph for '日' \\(2 such"):
        check_drawable("A日本")
    with pytest.raises(DataError, match="holds whitespace"):
        check_drawable("AB ")
    with pytest.raises(DataError, match="draws as nothing"):   # zero-width: no ink either
        check_drawable("AB\u200b")


def test_a_scored_batch_of_files_narrower_than_the_stride_reads_nothing(tmp_path):
    """A chunk of the test part holding only such files was a conv error ("Output size is
    too small"), which lost a training run's test figures; a part of which nothing fits has
    no loss (it said 0.0)."""
    import math

    from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
    from rnnkit.tasks import recognize
    torch.manual_seed(0)
    m = SequenceRecognizer(RecognizerConfig(num_classes=3, features=16, conv_layers=2,
                                            channels=2, time_stride=4, layers=1, hidden=4,
                                            dropout=0.0)).eval()
    wide = [(torch.randn(16, 40), [1, 2], f"w{i}") for i in range(3)]
    narrow = [(torch.randn(16, 2), [1, 2, 3], "n")]
    monkey = pytest.MonkeyPatch()
    monkey.setattr(recognize, "EVAL_BATCH", 3)        # the narrow file alone in a chunk
    try:
        loss, hyps, refs = recognize.decode_part(m, "abc", wide + narrow)
        want = recognize.decode_part(m, "abc", wide)
    finally:
        monkey.undo()
    assert hyps[3] == "" and hyps[:3] == want[1] and refs[3] == "abc"
    assert loss == pytest.approx(want[0])
    assert math.isnan(recognize.decode_part(m, "abc", [(torch.randn(16, 8), [1, 2, 3], "s")])[0])


def test_the_loss_of_a_transcript_longer_than_its_frames_is_a_clear_error():
    """From Python the loss was inf (torch's ctc_loss), and its gradient NaN."""
    from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
    torch.manual_seed(0)
    m = SequenceRecognizer(RecognizerConfig(num_classes=5, features=16, conv_layers=2,
                                            channels=4, time_stride=2, layers=1, hidden=8,
                                            dropout=0.0))
    x, targets, n = torch.randn(2, 16, 20), torch.tensor([[1, 2, 3], [1, 1, 1]]), torch.tensor([3, 3])
    assert torch.isfinite(m.loss(x, torch.tensor([20, 20]), targets, n))
    with pytest.raises(ValueError, match=r"batch row\(s\) \[1\] too short .* row 1 has 2 output "
                                         r"frames for a transcript that needs 5"):
        m.loss(x, torch.tensor([20, 4]), targets, n)


def test_an_input_narrower_than_the_stride_or_of_another_dtype_is_named():
    """From Python: torch's max-pool "output size is too small", and the convolution's
    "Input type and bias type should be the same"."""
    from rnnkit.layers.errors import InputTypeError
    from rnnkit.models.image_to_text import ImageToText, ImageToTextConfig
    from rnnkit.models.recognizer import RecognizerConfig, SequenceRecognizer
    m = SequenceRecognizer(RecognizerConfig(num_classes=5, features=16, conv_layers=2,
                                            channels=4, time_stride=4, layers=1, hidden=8))
    with pytest.raises(ValueError, match="expected input at least 4 columns wide .*got 3"):
        m(torch.randn(1, 16, 3), torch.tensor([3]))
    assert m(torch.randn(1, 16, 4), torch.tensor([4]))[1].tolist() == [1]
    with pytest.raises(InputTypeError, match="expected input of the model's dtype torch.float64, "
                                             "got torch.float32"):
        m.double()(torch.randn(1, 16, 8), torch.tensor([8]))
    i2t = ImageToText(ImageToTextConfig(vocab_size=6, height=16, width=16, conv_layers=2,
                                        channels=4, hidden=8))
    with pytest.raises(InputTypeError, match="expected images of the model's dtype"):
        i2t.double().encode(torch.randn(1, 16, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):   # autocast mixes dtypes on purpose
        m.float().eval()(torch.randn(1, 16, 8).bfloat16(), torch.tensor([8]))


def test_of_a_file_and_its_copy_the_original_is_kept(capsys):
    """'GDGA (1).png' sorts before 'GDGA.png': the copy was kept and the original left out, and
    the warning named the original a copy of the copy."""
    import numpy as np
    from rnnkit.tasks.recognize_data import without_copies
    pixels, other = np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32)
    examples = [(pixels, "GDGA", "GDGA (1).png"), (other, "ABCD", "ABCD.png"),
                (pixels, "GDGA", "GDGA.png"), (pixels, "GDGA", "GDGA - Copy.png")]
    kept = without_copies(examples, "caps", "image")
    assert [e[2] for e in kept] == ["ABCD.png", "GDGA.png"]
    assert "e.g. GDGA (1).png of GDGA.png" in capsys.readouterr().err
    examples = [(pixels, "GDGA copy", "GDGA copy.png"), (pixels, "GDGA", "GDGA.png")]
    assert [e[2] for e in without_copies(examples, "caps", "image")] == ["GDGA.png"]
