"""The image-to-text model's image vector: linear by default, and runs saved before the choice
existed load with the ReLU they were trained with."""
import torch

from rnnkit.models.image_to_text import ImageToText, ImageToTextConfig
from rnnkit.tasks.image_to_text import upgrade


def model(**kw):
    torch.manual_seed(0)
    return ImageToText(ImageToTextConfig(vocab_size=8, height=8, width=16, conv_layers=1,
                                         channels=2, vector=6, hidden=5, embed=3, **kw)).eval()


def test_the_image_vector_is_linear_unless_asked():
    x = torch.randn(4, 8, 16)
    with torch.no_grad():
        linear, relu, tanh = (model(vector_act=a).encode(x) for a in ("none", "relu", "tanh"))
    assert (linear < 0).any()                                   # no unit cut at zero
    torch.testing.assert_close(relu, linear.clamp_min(0))
    torch.testing.assert_close(tanh, linear.tanh())
    assert model().config.vector_act == "none"


def test_a_checkpoint_without_the_setting_is_read_as_relu():
    cfg = {k: v for k, v in vars(model().config).items() if k != "vector_act"}
    old = {"kind": "image-to-text", "model_config": cfg}
    assert upgrade(old)["model_config"]["vector_act"] == "relu"
    assert "vector_act" not in old["model_config"]                # the loaded dict is not changed
    new = {"model_config": dict(cfg, vector_act="tanh")}
    assert upgrade(new)["model_config"]["vector_act"] == "tanh"


def test_recognizer_only_perturbations_are_refused(tmp_path):
    """image-to-text shares recognize's data flags; the ones it would ignore are refused."""
    import pytest
    from rnnkit.config import ConfigError
    from rnnkit.tasks.image_to_text import build_image_to_text_task
    from rnnkit.tasks.recognize_data import RecognizeData
    for kw in (dict(tempo=1.5), dict(freq_mask=4), dict(time_mask=3)):
        with pytest.raises(ConfigError, match="image-to-text does not use them"):
            build_image_to_text_task(RecognizeData(data=str(tmp_path), **kw),
                                     ImageToTextConfig(), log=lambda *a: None)


def test_beam_read_finds_for_each_image_what_a_search_alone_finds():
    """Images searched as one batch (expand_beams, reorder_state) get what beam_search finds
    for each image alone from its own condition; a beam of 1 is greedy reading."""
    from rnnkit.decode.beam import beam_search
    from rnnkit.tasks.image_to_text import BOS_ID, EOS_ID, OFFSET, beam_read, greedy_read
    m = model(max_len=7)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():                     # a sharper model: ties are unlikely
            p.mul_(3)
    x = torch.randn(3, 8, 16)
    got = beam_read(m, x, 4)
    for i in range(3):
        (ids, score), = beam_search(m, [BOS_ID], 4, m.config.max_len, EOS_ID, 0.0,
                                    state=m.condition(x[i:i + 1]))
        assert got[i][0] == [t - OFFSET + 1 for t in ids if t >= OFFSET]
        assert abs(got[i][1] - score) < 1e-4
    assert [y for y, _ in beam_read(m, x, 1)] == [y for y, _ in greedy_read(m, x)]


def test_an_image_narrower_than_its_text_is_read_not_left_out(tmp_path, capsys):
    """image-to-text has no CTC: an image of fewer columns than its text has characters was
    left out of every part, and of eval, as too short under CTC."""
    from PIL import Image
    from rnnkit.models.image_to_text import ImageToTextConfig
    from rnnkit.tasks.image_to_text import build_image_to_text_task
    from rnnkit.tasks.recognize_data import RecognizeData
    from recognize_fixtures import write_captchas
    folder = write_captchas(tmp_path / "captchas")
    Image.new("L", (4, 60), 255).save(folder / "AB12BA_99.png")   # 2 columns at height 32
    task = build_image_to_text_task(
        RecognizeData(data=str(folder), batch=4, test_fraction=0.25, val_fraction=0.25),
        ImageToTextConfig(conv_layers=1, channels=2, vector=8, hidden=8, embed=4, max_len=8),
        log=lambda *a: None)
    assert sum(len(p) for p in (task.parts.train, task.parts.val, task.parts.test)) == 13
    assert "left out" not in capsys.readouterr().err
