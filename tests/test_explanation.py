"""The Explanation result: Eq. 7 aggregation, intervals, atomic save/load."""
import json

import pytest
import torch

from lightning_agx.explanation import Explanation, prompt_folder_name


def make(t=10, tokens=("a", "dog", "barks"), frame_rate=5.0):
    mask = torch.arange(t * len(tokens), dtype=torch.float32).reshape(t, len(tokens)) / (t * len(tokens))
    return Explanation(prompt="a dog barks", tokens=list(tokens), mask=mask, frame_rate=frame_rate,
                       codes=torch.zeros(4, t, dtype=torch.long), audio=torch.zeros(1, 800), sample_rate=400)


def test_audio_level_is_the_mean_over_steps():
    e = make()
    assert torch.allclose(e.audio_level(), e.mask.mean(0))


def test_interval_selects_the_steps_of_the_seconds():
    e = make(frame_rate=5.0)  # 10 steps = 2 s, step t covers [t/5, (t+1)/5)
    assert e.steps(0.0, 1.0) == slice(0, 5)
    assert e.steps(0.5, 1.1) == slice(2, 6)
    assert torch.allclose(e.interval(1.0, 2.0), e.mask[5:10].mean(0))
    assert torch.allclose(e.interval(0.0, 99.0), e.audio_level())  # clipped at the end


@pytest.mark.parametrize("start, end", [(1.0, 1.0), (-1, 1), (2.5, 3.0)])
def test_bad_intervals_are_named(start, end):
    with pytest.raises(ValueError, match="interval"):
        make().interval(start, end)


def test_ranking_orders_tokens_by_importance():
    ranking = make().ranking()
    assert [token for token, _ in ranking] == ["barks", "dog", "a"]


def test_mask_shape_must_match_tokens():
    with pytest.raises(ValueError, match="N = 2 tokens"):
        Explanation(prompt="x", tokens=["a", "b"], mask=torch.zeros(4, 3), frame_rate=50)


def test_save_load_round_trip(tmp_path):
    e = make()
    folder = e.save(tmp_path / prompt_folder_name(3, e.prompt))
    assert folder.name == "0003_a_dog_barks"
    back = Explanation.load(folder)
    assert torch.equal(back.mask, e.mask) and back.tokens == e.tokens and back.frame_rate == e.frame_rate
    assert torch.equal(back.codes, e.codes) and back.audio.shape == e.audio.shape
    summary = json.loads((folder / "explanation.json").read_text())
    assert summary["audio_level"] == pytest.approx(e.audio_level().tolist(), abs=1e-6)
    tensors = folder / "explanation.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0x01  # one bit of the last tensor value: the file still parses, its content has changed
    tensors.write_bytes(bytes(data))
    assert not Explanation.content_matches(folder)
    with pytest.raises(ValueError, match="does not match the hash"):
        Explanation.load(folder)


def test_a_failed_save_leaves_nothing_a_resume_would_trust(tmp_path):
    def broken(explanation, folder):
        raise OSError("disk full")

    e = make()
    with pytest.raises(OSError):
        e.save(tmp_path / "0000_x", extras=(broken,))
    assert list(tmp_path.iterdir()) == []  # no partial folder, no temporary folder
    assert not Explanation.is_complete(tmp_path / "0000_x")
