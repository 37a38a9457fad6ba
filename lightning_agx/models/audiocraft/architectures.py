"""audiocraft's real LM architectures with random weights (``load_model("arch:audiogen-medium")``), to measure cost.

No download: the configuration is audiocraft's own, composed here as its Hydra defaults would compose it
(audiocraft 1.3 ships its builders but not its ``config/`` yamls, so the values below are transcribed from
facebookresearch/audiocraft at commit 896ec7c, paths named beside them), and built with audiocraft's
builders, ``get_lm_model`` and ``get_compression_model``:

- the LM: ``model/lm/default.yaml`` + ``model/lm/{audiogen,musicgen}_lm.yaml`` + ``model/lm/model_scale/*.yaml``
  (delay pattern, 4 codebooks of 2048, pre-norm, no biases, gaussian init), classifier-free guidance 3.0;
- the codec: ``model/encodec/default.yaml`` + ``encodec_large_nq4_s320.yaml`` (AudioGen, 16 kHz) or
  ``encodec_large_nq4_s640.yaml`` (MusicGen, 32 kHz): audiocraft's EnCodec at 50 Hz, 4 codebooks of 2048;
- the text conditioner: audiocraft's ``LUTConditioner`` in place of ``T5Conditioner`` (T5's weights cannot be
  downloaded). T5Conditioner is a frozen T5 encoder followed by a Linear(T5 dim, LM dim); the LUT
  conditioner is an embedding table of T5's width (t5-large 1024 for AudioGen, t5-base 768 for MusicGen,
  T5's 32,128 rows) followed by the same Linear(T5 dim, LM dim), so the LM reads N token embeddings of the
  real dimension through the same projection. Its whitespace tokenizer keeps every word as written (stop words too, no lemmas), so
  a prompt has about as many tokens as T5's pieces of it. The T5 encoder's own forward (once per prompt,
  no gradient: the explainer reads detached embeddings) is the only cost left out.

Weights are random (seeded: the same name and seed give the same weights), in float32. Explanations of random
weights mean nothing: these models exist to measure speed and memory. The model's name keeps the ``arch:``
prefix, ``tag.random_weights`` is True, every explanation's metadata records it, and loading warns.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

ARCH_PREFIX = "arch:"
T5_VOCABULARY = 32128  # rows of T5's embedding table (t5-base and t5-large)


@dataclass(frozen=True)
class Architecture:
    family: str  # audiogen | musicgen
    scale: str  # model/lm/model_scale/<scale>.yaml
    sample_rate: int
    t5: str  # the T5 the released model conditions on (its width is the LUT's)
    max_duration: float  # seconds generated in one pass (AudioGen 10, MusicGen 30)


# model/lm/model_scale/*.yaml
SCALES = {"xsmall": {"dim": 64, "num_heads": 2, "num_layers": 2},
          "small": {"dim": 1024, "num_heads": 16, "num_layers": 24},
          "medium": {"dim": 1536, "num_heads": 24, "num_layers": 48},
          "large": {"dim": 2048, "num_heads": 32, "num_layers": 48}}
T5_DIMS = {"t5-base": 768, "t5-large": 1024}

ARCHITECTURES = {
    "audiogen-xsmall": Architecture("audiogen", "xsmall", 16000, "t5-large", 10.0),  # for tests
    "audiogen-medium": Architecture("audiogen", "medium", 16000, "t5-large", 10.0),  # facebook/audiogen-medium
    "musicgen-xsmall": Architecture("musicgen", "xsmall", 32000, "t5-base", 30.0),  # for tests
    "musicgen-small": Architecture("musicgen", "small", 32000, "t5-base", 30.0),
    "musicgen-medium": Architecture("musicgen", "medium", 32000, "t5-base", 30.0),
    "musicgen-large": Architecture("musicgen", "large", 32000, "t5-base", 30.0),
}


def architecture_names() -> list[str]:
    return [ARCH_PREFIX + name for name in ARCHITECTURES]


def architecture(name: str) -> Architecture:
    """The `Architecture` of ``arch:<name>``; an unknown name is one line listing the available ones."""
    from ...errors import UserError
    key = name[len(ARCH_PREFIX):] if name.startswith(ARCH_PREFIX) else name
    if key not in ARCHITECTURES:
        raise UserError(f"unknown architecture '{name}'; available: {', '.join(architecture_names())}")
    return ARCHITECTURES[key]


def lm_config(arch: Architecture, device: str = "cpu"):
    """audiocraft's LM configuration of `arch`, as its yamls compose it, with the LUT text conditioner."""
    from omegaconf import OmegaConf
    transformer_lm = {  # model/lm/default.yaml
        "dim": 512, "num_heads": 8, "num_layers": 8, "hidden_scale": 4, "n_q": 8, "card": 1024, "dropout": 0.0,
        "emb_lr": None, "activation": "gelu", "norm_first": False, "bias_ff": True, "bias_attn": True,
        "bias_proj": True, "past_context": None, "causal": True, "custom": False, "memory_efficient": False,
        "attention_as_float32": False, "layer_scale": None, "positional_embedding": "sin", "xpos": False,
        "checkpointing": "none", "weight_init": None, "depthwise_init": None, "zero_bias_init": False,
        "norm": "layer_norm", "cross_attention": False, "qk_layer_norm": False, "qk_layer_norm_cross": False,
        "attention_dropout": None, "kv_repeat": 1, "two_step_cfg": False}
    transformer_lm.update({  # model/lm/{audiogen,musicgen}_lm.yaml (identical transformer_lm sections)
        "n_q": 4, "card": 2048, "memory_efficient": True, "bias_proj": False, "bias_ff": False, "bias_attn": False,
        "norm_first": True, "layer_scale": None, "weight_init": "gaussian", "depthwise_init": "current",
        "zero_bias_init": True, "attention_as_float32": False})
    transformer_lm.update(SCALES[arch.scale])
    dropout = 0.1 if arch.family == "audiogen" else 0.3  # conditioner/text2sound.yaml, text2music.yaml
    return OmegaConf.create({
        "device": device, "dtype": "float32", "lm_model": "transformer_lm",
        "codebooks_pattern": {"modeling": "delay",
                              "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0}},
        "transformer_lm": transformer_lm,
        "classifier_free_guidance": {"training_dropout": dropout, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [], "prepend": [],
                  "cross": ["description"], "input_interpolate": []},
        "conditioners": {"description": {"model": "lut", "lut": {
            "n_bins": T5_VOCABULARY, "dim": T5_DIMS[arch.t5], "tokenizer": "whitespace"}}},
        "dataset": {"segment_duration": arch.max_duration},
    })


def compression_config(arch: Architecture, device: str = "cpu"):
    """audiocraft's EnCodec configuration of `arch` (model/encodec/default.yaml + encodec_large_nq4_s{320,640})."""
    from omegaconf import OmegaConf
    ratios = [8, 5, 4, 2] if arch.sample_rate == 16000 else [8, 5, 4, 4]  # hop 320 at 16 kHz, 640 at 32 kHz
    return OmegaConf.create({
        "device": device, "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": arch.sample_rate, "channels": 1,
                    "causal": False, "renormalize": False},
        "seanet": {"dimension": 128, "channels": 1, "causal": False, "n_filters": 64, "n_residual_layers": 1,
                   "ratios": ratios, "activation": "ELU", "activation_params": {"alpha": 1.0},
                   "norm": "weight_norm", "norm_params": {}, "kernel_size": 7, "residual_kernel_size": 3,
                   "last_kernel_size": 7, "dilation_base": 2, "pad_mode": "constant", "true_skip": True,
                   "compress": 2, "lstm": 2, "disable_norm_outer_blocks": 0,
                   "decoder": {"trim_right_ratio": 1.0, "final_activation": None,
                               "final_activation_params": None},
                   "encoder": {}},
        "rvq": {"n_q": 4, "q_dropout": False, "bins": 2048, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 50,
                "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
    })


def build_architecture(name: str, device: str | torch.device = "cpu", seed: int = 0):
    """audiocraft ``AudioGen`` / ``MusicGen`` of architecture `name` with random weights drawn from `seed` (the
    global random state is restored afterwards). Warns that the weights are random."""
    from audiocraft.models import AudioGen, MusicGen
    from audiocraft.models.builders import get_compression_model, get_lm_model
    from audiocraft.modules.conditioners import WhiteSpaceTokenizer

    arch = architecture(name)
    device = str(torch.device(device))
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*weight_norm.*")  # torch's deprecation in SEANet
            compression = get_compression_model(compression_config(arch, device)).eval()
        lm = get_lm_model(lm_config(arch, device)).eval()
    finally:
        torch.random.set_rng_state(state)
    conditioner = lm.condition_provider.conditioners["description"]
    conditioner.tokenizer = WhiteSpaceTokenizer(T5_VOCABULARY, lemma=False, stopwords=False)  # every word, as written
    lm.cfg = lm_config(arch, device)
    klass = AudioGen if arch.family == "audiogen" else MusicGen
    genmodel = klass(ARCH_PREFIX + name.removeprefix(ARCH_PREFIX), compression, lm, max_duration=arch.max_duration)
    genmodel.set_generation_params(duration=min(5.0, arch.max_duration), use_sampling=True, top_k=250, top_p=0.0,
                                   temperature=1.0, cfg_coef=3.0)  # the released models' sampling
    params = sum(p.numel() for p in lm.parameters())
    warnings.warn(f"{genmodel.name}: audiocraft's {arch.family} {arch.scale} architecture ({params / 1e6:.0f} M LM "
                  "parameters) with RANDOM weights, for measuring cost only: its explanations mean nothing",
                  stacklevel=3)
    return genmodel


__all__ = ["ARCHITECTURES", "ARCH_PREFIX", "Architecture", "architecture", "architecture_names",
           "build_architecture", "compression_config", "lm_config"]
