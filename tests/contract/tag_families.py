"""The families the `TAGModel` contract (`test_tag_contract.py`) runs over: adding a family is ONE entry of
`FAMILIES`. `conftest.py` builds or loads each model once per session (the `family` fixture), with the
generation of `PROMPTS` every check starts from.

A `Family` says how to get the model (`load`), how it saves and loads again in its own checkpoint format
(`reload`), the float tolerances of its checks (each with its reason; 0 means bitwise equal) and the checks it
is known to fail (`known_failures`: each one a strict xfail with its reason, so a fix shows up as XPASS).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from lightning_agx.models import TAGModel, load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))  # the tiny pipeline builders

PROMPTS = ["a dog barks loudly near a river", "rain"]  # different lengths: "rain" is padded in the batch


@dataclass(frozen=True)
class Family:
    load: Callable[[Path], TAGModel]  # the model, built or loaded into a folder of its own
    reload: Callable[[TAGModel, Path], TAGModel]  # saved in the family's checkpoint format and loaded back
    batch_atol: float = 0.0  # a prompt alone vs beside a longer one (audio, latents), a copy of `repeats` vs alone
    generation_latents_atol: float = 0.0  # the latents generation keeps vs the reference forward's
    known_failures: dict[str, str] = field(default_factory=dict)  # "test" or "test[param]" -> reason
    requires: tuple[str, ...] = ()  # modules the family needs: it is skipped while one does not exist


# ---------------------------------------------------------------------------------------------------- checkpoints
def _audiocraft_configs(tag) -> tuple[dict, dict]:
    """audiocraft training configs (as `builders.get_lm_model` / `get_compression_model` read them) that build
    the architecture of ``debug`` / ``debug-magnet`` (`lightning_agx.models.registry`): audiocraft's debug LM
    (or the embedded MAGNeT) and its debug codec at 16 kHz. Unlisted keys take the classes' defaults, as the
    in-code builders do."""
    from audiocraft.models.lm_magnet import MagnetLMModel
    lm = {"solver": "audiogen", "device": "cpu", "dtype": "float32", "sample_rate": tag.sample_rate, "channels": 1,
          "lm_model": "transformer_lm", "codebooks_pattern": {"modeling": "delay", "delay": {}},
          "transformer_lm": {"n_q": 4, "card": 400, "dim": 16, "num_heads": 4, "num_layers": 2, "custom": True,
                             "causal": True},
          "classifier_free_guidance": {"training_dropout": 0.0, "inference_coef": 3.0}, "attribute_dropout": {},
          "fuser": {"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []},
          "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 128, "dim": 16,
                                                                   "tokenizer": "whitespace"}}},
          "dataset": {"segment_duration": int(tag.max_duration)}}
    if isinstance(tag.lm, MagnetLMModel):
        lm.update(lm_model="transformer_lm_magnet", solver="audio_magnet", masking={"span_len": tag.lm.span_len},
                  codebooks_pattern={"modeling": "parallel", "parallel": {}})
        lm["transformer_lm"].update(causal=False, subcodes_context=5)
    codec = {"solver": "compression", "device": "cpu", "sample_rate": tag.sample_rate, "channels": 1,
             "compression_model": "encodec",
             "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": tag.sample_rate, "channels": 1},
             "seanet": {"dimension": 32, "n_filters": 4, "n_residual_layers": 1, "ratios": [10, 8, 8],
                        "encoder": {}, "decoder": {}},
             "rvq": {"n_q": 4, "bins": 400}}
    return lm, codec


def audiocraft_reload(tag, folder: Path) -> TAGModel:
    """`tag` saved as an audiocraft checkpoint folder (``state_dict.bin`` and ``compression_state_dict.bin``, the
    format ``audiocraft.utils.export`` writes; `tests/models/test_checkpoints.py`) and loaded with
    ``load_model(folder)``."""
    from omegaconf import OmegaConf

    from lightning_agx.models.audiocraft.checkpoints import COMPRESSION_FILE, LM_FILE
    folder.mkdir(parents=True)
    lm_cfg, codec_cfg = _audiocraft_configs(tag)
    for name, cfg, module in ((LM_FILE, lm_cfg, tag.lm), (COMPRESSION_FILE, codec_cfg, tag.compression_model)):
        torch.save({"best_state": module.state_dict(), "xp.cfg": OmegaConf.to_yaml(OmegaConf.create(cfg)),
                    "version": "1.3.0", "exported": True}, folder / name)
    again = load_model(str(folder), duration=tag.duration)
    again.generation_params = dict(tag.generation_params)  # sampling settings: the run's, in no checkpoint
    return again


def tiny_audioldm2(folder: Path) -> TAGModel:
    """The tiny ``AudioLDM2Pipeline`` of `tiny_pipelines` saved with ``save_pretrained`` and loaded by
    ``load_model(folder)``: 1 s (25 latent rows), 4 sampling steps."""
    from tiny_pipelines import save_tiny_audioldm2
    return _audioldm2_settings(load_model(str(save_tiny_audioldm2(folder / "tiny")), duration=1.0))


def _audioldm2_settings(tag: TAGModel) -> TAGModel:
    tag.generation_params["num_inference_steps"] = 4  # the pipeline's 200 on 2 CPU cores: far too slow
    return tag


def diffusers_reload(tag, folder: Path) -> TAGModel:
    """The pipeline folder `tag` was loaded from, read by diffusers' ``from_pretrained`` and written again by
    ``save_pretrained`` to `folder`, then loaded with ``load_model(folder)`` (the sampling settings, which the
    run passes and no checkpoint holds, are the family's)."""
    from diffusers import DiffusionPipeline

    from tiny_pipelines import save_pipeline
    save_pipeline(DiffusionPipeline.from_pretrained(tag.name), folder)
    return _audioldm2_settings(load_model(str(folder), duration=tag.duration))


def musicgen_load(folder: Path) -> TAGModel:
    from tiny_musicgen import tiny_musicgen  # tests/models: the tiny transformers MusicGen saved with save_pretrained
    return tiny_musicgen(folder)


def musicgen_reload(tag, folder: Path) -> TAGModel:
    from tiny_musicgen import musicgen_reload
    return musicgen_reload(tag, folder)


def seeded_rebuild(name: str) -> Callable[[TAGModel, Path], TAGModel]:
    """A model with no checkpoint format of its own (built in code from a seed): its identity is (name, seed),
    so its 'checkpoint' round trip is a rebuild from the seed."""
    return lambda tag, folder: load_model(name, seed=0, duration=tag.duration)


# ---------------------------------------------------------------------------------------------------- families
ATMAN_ONE_TOKEN = ("AtMan scales the pre-softmax score of one key: the only key of 'rain' keeps its softmax weight 1, "
                   "so its importance is 0 (the audiocraft LUT keys have no padding keys to take weight)")
FAMILIES: dict[str, Family] = {
    # audiocraft's autoregressive LM: audiocraft's debug LM and codec (25 Hz, delay pattern: 28 steps for 1 s)
    "debug": Family(
        load=lambda folder: load_model("debug", seed=0), reload=audiocraft_reload,
        batch_atol=1e-5,  # float32 rounding of batched matmuls (measured 5e-7); the tokens are exact
        generation_latents_atol=1e-5,  # generation's cached incremental attention vs one pass (measured 6e-7)
        known_failures={
            "test_a_mask_of_the_wrong_shape_is_refused[forward-steps]": "a mask of T + 2 steps is accepted: the "
            "streamed cross-attention reads its first T rows and ignores the rest",
            "test_a_mask_of_the_wrong_shape_is_refused[generate-steps]": "a mask of T + 2 steps is accepted in "
            "generation (one row per generation call; the extra rows are never read)",
            "test_every_method_gives_each_prompt_some_importance[atman]": ATMAN_ONE_TOKEN}),
    # audiocraft's MAGNeT (non-autoregressive, spans of 3 frames: 24 steps for 1 s)
    "debug-magnet": Family(
        load=lambda folder: load_model("debug-magnet", seed=0), reload=audiocraft_reload,
        batch_atol=1e-5,  # float32 rounding of batched matmuls (measured 5e-7); the tokens are exact
        known_failures={
            "test_a_mask_of_the_wrong_shape_is_refused[generate-tokens]": "generation accepts a mask of N + 3 "
            "tokens and ignores the extra columns (the reference forward refuses it)",
            "test_a_mask_of_the_wrong_shape_is_refused[generate-steps]": "generation accepts a mask of T + 2 "
            "steps and ignores the extra rows (the reference forward refuses it)",
            "test_every_method_gives_each_prompt_some_importance[atman]": ATMAN_ONE_TOKEN}),
    # diffusers' StableAudioDiTModel on the hashed LUT text (no checkpoint format: built from its seed)
    "debug-diffusion": Family(
        load=lambda folder: load_model("debug-diffusion", seed=0), reload=seeded_rebuild("debug-diffusion"),
        batch_atol=1e-5,  # batched float32 maths of the DiT (measured 7e-7)
        known_failures={
            "test_a_mask_of_the_wrong_shape_is_refused[forward-tokens]": "a mask of N + 3 tokens is accepted: its "
            "extra columns fall on the zero padding keys of Stable Audio's fixed 16-key text (text_length=16)",
            "test_a_mask_of_the_wrong_shape_is_refused[generate-tokens]": "a mask of N + 3 tokens is accepted in "
            "generation: it falls on the zero padding keys of the fixed 16-key text"}),
    # AudioLDM 2 (UNet over the 2-D mel latent; T5 and GPT-2 streams), the tiny pipeline saved with save_pretrained
    "audioldm2": Family(
        load=tiny_audioldm2, reload=diffusers_reload,
        batch_atol=1e-4,  # T5, GPT-2 and the UNet in float32, batched, over 4 sampling steps (measured 9e-6)
        known_failures={
            "test_every_method_gives_each_prompt_some_importance[gradcam_a]": "on this untrained UNet Grad-CAM's "
            "ReLU'd step score is negative at every step: all zero"}),
    # transformers' MusicGen (0.5 s at 50 Hz, delay pattern: 28 steps), skipped while its adapter or builder is absent
    "musicgen": Family(
        load=musicgen_load, reload=musicgen_reload,
        batch_atol=1e-5, generation_latents_atol=1e-5,  # as audiocraft's LM: float32 rounding, cached attention
        requires=("lightning_agx.models.transformers.musicgen", "tiny_musicgen")),
}
