"""The authors' four AudioGen examples (../shared/data/audiogenx_examples): their [T, N] masks over real
5 s audiogen-medium audio go through our Explanation (Eq. 7, save/load) and figures unchanged."""
import pytest
import soundfile as sf
import torch

from lightning_agx.explanation import Explanation
from lightning_agx.figures import save_figures

AUDIOGEN_FRAME_RATE = 50  # audiogen-medium: EnCodec at 50 Hz, 4 codebooks with the delay pattern
EXAMPLES = ("a_clock_ticktocks_with_music", "a_crowd_is_clapping_at_an_animal_of_some_kind",
            "a_train_horn_honks_as_a_train_speeds_past", "a_vehicle_accelerating_in_the_distance_then_drving_by")


@pytest.mark.parametrize("name", EXAMPLES)
def test_authors_mask_round_trips_through_explanation_and_figures(shared_dir, name, tmp_path):
    folder = shared_dir / "data" / "audiogenx_examples" / name
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    mask = torch.load(folder / "mask.pt", weights_only=True)
    audio, sr = sf.read(folder / "original.wav", dtype="float32")
    assert mask.dim() == 2 and float(mask.min()) >= 0 and float(mask.max()) <= 1, "a keep probability per step and token"
    # T = 5 s x 50 Hz + 3 delay steps: one row per LM step, as our explanations have
    assert mask.shape[0] == round(len(audio) / sr * AUDIOGEN_FRAME_RATE) + 3
    tokens = [f"tok{i}" for i in range(mask.shape[1])]  # T5 pieces; the tokenizer itself needs a download
    e = Explanation(name.replace("_", " "), tokens, mask, AUDIOGEN_FRAME_RATE,
                    audio=torch.from_numpy(audio)[None], sample_rate=sr)
    saved = e.save(tmp_path / name, extras=(save_figures,))
    back = Explanation.load(saved)
    assert torch.equal(back.mask, mask) and back.sample_rate == sr
    assert torch.allclose(back.audio_level(), mask.mean(0))
    assert torch.allclose(back.interval(0.0, 1.0), mask[:AUDIOGEN_FRAME_RATE].mean(0))
    for png in ("heatmap.png", "bars.png"):
        assert (saved / png).stat().st_size > 10_000, f"{png} rendered"
