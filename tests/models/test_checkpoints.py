"""Real-format AudioGen / MusicGen checkpoints load safely (weights_only=True), with one-line errors.

Tiny AudioGen-style (16 kHz) and MusicGen-style (32 kHz) models are built with audiocraft's own
``audiocraft.models.builders`` from configs laid out like audiocraft's training configs (config/config.yaml,
config/model/lm/{audiogen,musicgen}_lm.yaml, config/conditioner/text2{sound,music}.yaml,
config/model/encodec/default.yaml; audiocraft 1.3.0 does not ship them in the wheel), shrunk to dim 16.
The T5 conditioner's weights cannot be had here (no network), so the text conditioner is audiocraft's LUT
conditioner (``conditioners.description.model: lut``) in place of T5; a T5 config is used only to check the
'T5 not in the cache' error. Each model is saved in both checkpoint formats: ``xp.cfg`` as an OmegaConf
DictConfig (as the released checkpoints) and as a YAML string (as ``audiocraft.utils.export.export_lm`` /
``export_encodec`` write it).
"""
import argparse
import collections
import hashlib
import os
import warnings

import pytest
import torch
from omegaconf import OmegaConf

from lightning_agx.errors import ModelLoadError, UserError
from lightning_agx.models import load_model
from lightning_agx.models.audiocraft.checkpoints import COMPRESSION_FILE, LM_FILE, genmodel_class, sha256_file

SAMPLE_RATES = {"audiogen": 16000, "musicgen": 32000}
SEGMENT = {"audiogen": 10, "musicgen": 30}  # dataset.segment_duration of the released models (max_duration)
RATIOS = {"audiogen": [8, 5, 4, 2], "musicgen": [8, 5, 4, 4]}  # 50 Hz at either rate
DURATION = 0.2  # seconds generated: 10 frames


def lm_config(solver: str, text: dict | None = None) -> dict:
    """What ``builders.get_lm_model`` reads, as the audiogen/musicgen LM configs have it, at dim 16."""
    conditioners = {"description": text or {"model": "lut", "lut": {"n_bins": 64, "dim": 16,
                                                                     "tokenizer": "whitespace"}}}
    if solver == "musicgen":  # training-only keys that loaders.load_lm_model deletes (_delete_param)
        conditioners["args"] = {"merge_text_conditions_p": 0.25, "drop_desc_p": 0.5}
    return {
        "solver": solver, "device": "cuda", "dtype": "float32", "sample_rate": SAMPLE_RATES[solver], "channels": 1,
        "lm_model": "transformer_lm",
        "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0,
                                                              "empty_initial": 0},
                              "unroll": {"flattening": [0, 1, 2, 3], "delays": [0, 0, 0, 0]},
                              "music_lm": {"group_by": 2}, "coarse_first": {"delays": [0, 0, 0]}},
        "transformer_lm": {
            "dim": 16, "num_heads": 2, "num_layers": 2, "hidden_scale": 2, "n_q": 4, "card": 256, "dropout": 0.0,
            "emb_lr": None, "activation": "gelu", "norm_first": True, "bias_ff": False, "bias_attn": False,
            "bias_proj": False, "past_context": None, "causal": True, "custom": False, "memory_efficient": True,
            "attention_as_float32": False, "layer_scale": None, "positional_embedding": "sin", "xpos": False,
            "checkpointing": "none", "weight_init": "gaussian", "depthwise_init": "current",
            "zero_bias_init": True, "norm": "layer_norm", "cross_attention": False, "qk_layer_norm": False,
            "qk_layer_norm_cross": False, "attention_dropout": None, "kv_repeat": 1, "two_step_cfg": False},
        "classifier_free_guidance": {"training_dropout": 0.1, "inference_coef": 3.0},
        "attribute_dropout": {},
        "fuser": {"cross_attention_pos_emb": False, "cross_attention_pos_emb_scale": 1, "sum": [], "prepend": [],
                  "cross": ["description"], "input_interpolate": []},
        "conditioners": conditioners,
        "dataset": {"segment_duration": SEGMENT[solver], "batch_size": 2},
    }


def compression_config(solver: str) -> dict:
    """What ``builders.get_compression_model`` reads (config/model/encodec/default.yaml), shrunk."""
    return {
        "solver": "compression", "device": "cuda", "sample_rate": SAMPLE_RATES[solver], "channels": 1,
        "compression_model": "encodec",
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": "${sample_rate}",
                    "channels": "${channels}", "causal": False, "renormalize": False},
        "seanet": {"dimension": 16, "channels": "${channels}", "causal": "${encodec.causal}", "n_filters": 2,
                   "n_residual_layers": 1, "ratios": RATIOS[solver], "activation": "ELU",
                   "activation_params": {"alpha": 1.0}, "norm": "weight_norm", "norm_params": {},
                   "kernel_size": 7, "residual_kernel_size": 3, "last_kernel_size": 7, "dilation_base": 2,
                   "pad_mode": "constant", "true_skip": True, "compress": 2, "lstm": 1,
                   "disable_norm_outer_blocks": 0,
                   "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
                   "encoder": {}},
        "rvq": {"n_q": 4, "q_dropout": False, "bins": 256, "decay": 0.99, "kmeans_init": False, "kmeans_iters": 50,
                "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0,
                "orthogonal_reg_active_codes_only": False},
        "no_quant": {},
    }


def _cpu(cfg: dict) -> dict:
    return {**cfg, "device": "cpu"}


def build_states(solver: str, seed: int = 0) -> tuple[dict, dict]:
    """Random LM and codec state dicts built by audiocraft's builders from the configs above."""
    from lightning_agx.models.audiocraft._install import ensure_audiocraft
    ensure_audiocraft()
    from audiocraft.models import builders
    torch.manual_seed(seed)
    lm = builders.get_lm_model(OmegaConf.create(_cpu(lm_config(solver))))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated", category=FutureWarning)  # seanet
        codec = builders.get_compression_model(OmegaConf.create(_cpu(compression_config(solver))))
    return lm.state_dict(), codec.state_dict()


def save_checkpoint(path, cfg: dict, state: dict, fmt: str, **extra) -> None:
    """``fmt='dictconfig'``: as the released checkpoints; ``'yaml'``: as audiocraft.utils.export writes them."""
    config = OmegaConf.create(cfg)
    OmegaConf.set_struct(config, True)  # hydra configs are struct
    xp_cfg = config if fmt == "dictconfig" else OmegaConf.to_yaml(config)
    pkg = {"best_state": state, "xp.cfg": xp_cfg, "version": "1.3.0"}
    if fmt == "yaml":
        pkg["exported"] = True
    pkg.update(extra)
    torch.save(pkg, path)


@pytest.fixture(scope="module")
def states():
    return {solver: build_states(solver) for solver in ("audiogen", "musicgen")}


@pytest.fixture(scope="module")
def folders(states, tmp_path_factory):
    """``{(solver, fmt): folder}`` with state_dict.bin and compression_state_dict.bin."""
    out = {}
    for solver, (lm_state, codec_state) in states.items():
        for fmt in ("dictconfig", "yaml"):
            folder = tmp_path_factory.mktemp(f"{solver}-{fmt}")
            save_checkpoint(folder / LM_FILE, lm_config(solver), lm_state, fmt)
            save_checkpoint(folder / COMPRESSION_FILE, compression_config(solver), codec_state, fmt)
            out[solver, fmt] = folder
    return out


def _same_state(module, state: dict) -> bool:
    loaded = module.state_dict()
    return loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize("fmt", ["dictconfig", "yaml"])
@pytest.mark.parametrize("solver", ["audiogen", "musicgen"])
def test_checkpoint_loads_generates_and_keeps_its_weights(folders, states, solver, fmt):
    from audiocraft.models import AudioGen, MusicGen
    folder = folders[solver, fmt]
    tag = load_model(str(folder), duration=DURATION)
    assert type(tag.genmodel) is (MusicGen if solver == "musicgen" else AudioGen)  # from cfg.solver
    assert tag.genmodel.max_duration == SEGMENT[solver] and tag.sample_rate == SAMPLE_RATES[solver]
    lm_state, codec_state = states[solver]
    assert _same_state(tag.lm, lm_state) and _same_state(tag.compression_model, codec_state)
    assert tag.lm.cfg.device == "cpu" and tag.lm.cfg.dtype == "float32"  # the saved cfg said cuda
    assert "args" not in tag.lm.cfg.conditioners or "drop_desc_p" not in tag.lm.cfg.conditioners.args
    gen = tag.generate(["a dog barks", "rain"], seed=0)
    assert gen.codes.shape == (2, 4, int(DURATION * 50))
    assert 0 <= int(gen.codes.min()) and int(gen.codes.max()) < 256
    files = hashlib.sha256(f"{LM_FILE}:{sha256_file(folder / LM_FILE)}\n"
                           f"{COMPRESSION_FILE}:{sha256_file(folder / COMPRESSION_FILE)}\n".encode()).hexdigest()
    assert tag.weights_hash == files  # from the files, not TAGModel's state-dict hash


def test_explain_runs_on_a_loaded_checkpoint(folders):
    import lightning_agx
    from lightning_agx.explainer import ExplainerConfig
    tag = load_model(str(folders["audiogen", "dictconfig"]), duration=DURATION)
    explanations = lightning_agx.explain(tag, ["a dog barks"], config=ExplainerConfig(epochs=2, hidden=8),
                                         trainer={"enable_progress_bar": False}, logger=None, figures=False)
    assert len(explanations) == 1
    assert explanations[0].mask.shape == (tag.num_steps(), len(explanations[0].tokens))


def test_the_class_rule_falls_back_to_the_name():
    from audiocraft.models import AudioGen, MusicGen
    assert genmodel_class("/data/my-musicgen-finetune", OmegaConf.create({})) is MusicGen
    assert genmodel_class("/data/my-model", OmegaConf.create({})) is AudioGen
    assert genmodel_class("/data/my-musicgen", OmegaConf.create({"solver": "audiogen"})) is AudioGen


def _copy(folder, tmp_path):
    for name in (LM_FILE, COMPRESSION_FILE):
        (tmp_path / name).write_bytes((folder / name).read_bytes())
    return tmp_path


def test_a_truncated_file_is_named(folders, tmp_path):
    folder = _copy(folders["audiogen", "dictconfig"], tmp_path)
    data = (folder / LM_FILE).read_bytes()
    (folder / LM_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match=f"{LM_FILE} is unreadable.*truncated or corrupt") as info:
        load_model(str(folder))
    assert "\n" not in str(info.value) and info.value.__cause__ is None and info.value.__suppress_context__


def test_a_missing_file_is_named(folders, tmp_path):
    folder = _copy(folders["audiogen", "yaml"], tmp_path)
    (folder / COMPRESSION_FILE).unlink()
    with pytest.raises(ModelLoadError, match=f"{COMPRESSION_FILE} does not exist"):
        load_model(str(folder))


def test_a_pickle_without_best_state_is_the_wrong_format(states, folders, tmp_path):
    folder = _copy(folders["audiogen", "dictconfig"], tmp_path)
    torch.save({"xp.cfg": OmegaConf.to_yaml(OmegaConf.create(lm_config("audiogen"))), "version": "1.3.0"},
               folder / LM_FILE)
    with pytest.raises(ModelLoadError, match=f"wrong format: .*{LM_FILE} has no 'best_state'") as info:
        load_model(str(folder))
    assert "\n" not in str(info.value)


def test_a_config_that_cannot_build_names_the_missing_key(states, folders, tmp_path):
    folder = _copy(folders["musicgen", "dictconfig"], tmp_path)
    cfg = lm_config("musicgen")
    del cfg["transformer_lm"]
    save_checkpoint(folder / LM_FILE, cfg, states["musicgen"][0], "dictconfig")
    with pytest.raises(ModelLoadError, match="wrong format: .*cannot build an LM.*transformer_lm") as info:
        load_model(str(folder))
    assert "\n" not in str(info.value)


class _Payload(collections.OrderedDict):
    """An OrderedDict subclass: unpickling it would call this module's code."""


@pytest.mark.parametrize("payload", [argparse.Namespace(x=1), _Payload(a=1)], ids=["Namespace", "subclass"])
def test_a_non_allow_listed_class_is_refused(states, folders, tmp_path, payload):
    """weights_only stays on: only the OmegaConf config classes are allowed, nothing else."""
    folder = _copy(folders["audiogen", "dictconfig"], tmp_path)
    save_checkpoint(folder / LM_FILE, lm_config("audiogen"), states["audiogen"][0], "dictconfig", extra=payload)
    refused = f"{LM_FILE} is unreadable.*Unsupported global.*refuses to unpickle"
    with pytest.raises(ModelLoadError, match=refused) as info:
        load_model(str(folder))
    assert "\n" not in str(info.value)


def test_a_released_format_pickle_reads_with_the_allow_list_only(folders):
    """torch>=2.6's default torch.load refuses the DictConfig audiocraft pickles; `read_checkpoint` reads it,
    still with weights_only=True, and gets the config back as a DictConfig."""
    import pickle
    from omegaconf import DictConfig
    from lightning_agx.models.audiocraft.checkpoints import read_checkpoint
    path = folders["audiogen", "dictconfig"] / LM_FILE
    with pytest.raises(pickle.UnpicklingError, match="omegaconf"):
        torch.load(path)
    cfg = read_checkpoint(path, "test")["xp.cfg"]
    assert isinstance(cfg, DictConfig) and OmegaConf.is_struct(cfg)
    assert OmegaConf.to_container(cfg) == lm_config("audiogen")


def test_a_hub_model_not_in_an_empty_cache_offline(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("AUDIOCRAFT_CACHE_DIR", raising=False)
    with pytest.raises(ModelLoadError, match="state_dict.bin is not in the Hugging Face cache.*HF_HUB_OFFLINE "
                                             "is set.*HF_HOME.*'toysounds' that is embedded") as info:
        load_model("facebook/audiogen-medium")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path) in message and isinstance(info.value, UserError)
    assert "Retrying" not in "".join(capfd.readouterr())


def test_a_t5_text_encoder_not_in_the_cache_is_named(states, folders, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    folder = _copy(folders["audiogen", "yaml"], tmp_path)
    t5 = {"model": "t5", "t5": {"name": "t5-large", "finetune": False, "word_dropout": 0.0, "normalize_text": False}}
    save_checkpoint(folder / LM_FILE, lm_config("audiogen", text=t5), states["audiogen"][0], "yaml")
    with pytest.raises(ModelLoadError, match="T5 text encoder 't5-large'.*not in the Hugging Face cache") as info:
        load_model(str(folder))
    assert "\n" not in str(info.value)


@pytest.mark.real_weights
def test_real_audiogen_medium_loads_if_cached():
    from huggingface_hub import try_to_load_from_cache
    from lightning_agx.models.audiocraft.checkpoints import hf_cache_dir
    cache = os.environ.get("AUDIOCRAFT_CACHE_DIR") or hf_cache_dir()
    for name in (LM_FILE, COMPRESSION_FILE):
        if not isinstance(try_to_load_from_cache("facebook/audiogen-medium", name, cache_dir=cache), str):
            pytest.skip(f"facebook/audiogen-medium's {name} is not in the Hugging Face cache ({cache})")
    if not isinstance(try_to_load_from_cache("t5-large", "config.json", cache_dir=hf_cache_dir()), str):
        pytest.skip("its T5 text encoder t5-large is not in the Hugging Face cache")
    tag = load_model("facebook/audiogen-medium", duration=0.5)
    from audiocraft.models import AudioGen
    assert isinstance(tag.genmodel, AudioGen) and tag.sample_rate == 16000 and len(tag.weights_hash) == 64
    gen = tag.generate(["a dog barks"], seed=0)
    assert gen.codes.shape == (1, 4, 25)
