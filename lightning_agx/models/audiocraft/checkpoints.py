"""Load audiocraft AudioGen / MusicGen checkpoints safely (``torch.load(weights_only=True)``), with clear errors.

audiocraft 1.3.0 loads its release checkpoints in ``audiocraft/models/loaders.py`` (``_get_state_dict``,
``load_lm_model``, ``load_compression_model``) with bare ``torch.load`` calls that rely on torch's old default
``weights_only=False``; since torch 2.6 the default is True and the released files fail to unpickle their
OmegaConf config (audiocraft PR #534 turns the check off). Here the two files of a model

- ``state_dict.bin``: ``{'xp.cfg': cfg, 'best_state': LM state dict, 'version': ..., ['exported': True]}``
- ``compression_state_dict.bin``: the same for the codec, or ``{'pretrained': 'facebook/encodec_32khz', ...}``
  (``audiocraft.utils.export.export_pretrained_compression_model``)

are read with ``weights_only=True`` under ``torch.serialization.safe_globals(SAFE_GLOBALS)``; ``cfg`` may be an
OmegaConf ``DictConfig`` (the released checkpoints) or a YAML string (what ``audiocraft.utils.export.export_lm``
/ ``export_encodec`` write). The models are then built with ``audiocraft.models.builders`` exactly as the
loaders do, and wrapped into ``AudioGen``, ``MusicGen`` or ``MAGNeT`` (`genmodel_class`). Every failure is one
line, raised as `ModelLoadError` without a chained trace: not in the cache (offline or not downloadable),
present but unreadable, wrong format, or T5 text encoder not in the cache.
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import re
import typing
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict
from omegaconf.base import ContainerMetadata, Metadata
from omegaconf.errors import OmegaConfBaseException
from omegaconf.nodes import AnyNode

from ._install import ensure_audiocraft
from ...errors import ModelLoadError

LM_FILE = "state_dict.bin"
COMPRESSION_FILE = "compression_state_dict.bin"

#: What unpickling a ``DictConfig`` (omegaconf 2.x, ``BaseContainer.__getstate__``) needs beyond tensors and
#: plain containers, found by removing one entry at a time: every one is needed by a config with nested dicts
#: and lists (all audiocraft configs have both). Nothing here runs code when unpickled.
SAFE_GLOBALS = [
    DictConfig,  # the config and each nested mapping
    ListConfig,  # each list (seanet.ratios, codebooks_pattern.delay.delays, fuser.cross, ...)
    ContainerMetadata,  # ``_metadata`` of every DictConfig / ListConfig
    Metadata,  # ``_metadata`` of every leaf node
    AnyNode,  # every leaf value (untyped YAML configs hold only AnyNode leaves)
    typing.Any,  # ``ref_type`` / ``key_type`` / ``element_type`` of untyped nodes
    dict,  # ``object_type`` of a DictConfig (a class reference, pickled as ``__builtin__.dict``)
    list,  # ``object_type`` of a ListConfig
    int,  # ``key_type`` of a ListConfig (pickled as ``__builtin__.long`` by protocol 2)
    collections.defaultdict,  # ``ContainerMetadata.resolver_cache`` (``defaultdict(dict)``)
]

_RETRY_LOGGERS = ("huggingface_hub", "transformers", "urllib3", "httpx")
_T5_HOW = "audiocraft's T5Conditioner loads it with transformers' from_pretrained"


@dataclass
class LoadedCheckpoint:
    """An audiocraft ``AudioGen`` / ``MusicGen`` and the sha256 of the checkpoint files it came from."""

    genmodel: typing.Any  # audiocraft.models.genmodel.BaseGenModel
    files: dict[str, Path]  # LM_FILE / COMPRESSION_FILE -> local path
    sha256: dict[str, str] = field(default_factory=dict)  # same keys -> hex digest of the file

    @property
    def weights_hash(self) -> str:
        """sha256 (hex) over the LM's and the codec's file digests: one id for the weights of the model."""
        text = "".join(f"{key}:{self.sha256[key]}\n" for key in (LM_FILE, COMPRESSION_FILE))
        return hashlib.sha256(text.encode()).hexdigest()


def load_checkpoint(name: str, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Load the AudioGen / MusicGen / MAGNeT `name` (a hub id such as ``facebook/audiogen-medium`` or a local
    folder with ``state_dict.bin`` and ``compression_state_dict.bin``) on `device`, in eval mode.

    Mirrors ``AudioGen.get_pretrained`` / ``MusicGen.get_pretrained`` / ``MAGNeT.get_pretrained``
    (audiocraft/models/audiogen.py, musicgen.py, magnet.py), with safe unpickling and one-line `ModelLoadError`s.
    """
    ensure_audiocraft()
    files = {key: checkpoint_file(name, key) for key in (LM_FILE, COMPRESSION_FILE)}
    sha256 = {key: sha256_file(path) for key, path in files.items()}
    lm_pkg = read_checkpoint(files[LM_FILE], name)
    compression_pkg = read_checkpoint(files[COMPRESSION_FILE], name)
    compression_model = build_compression_model(compression_pkg, files[COMPRESSION_FILE], name, device)
    lm = build_lm_model(lm_pkg, files[LM_FILE], name, device, frame_rate=int(compression_model.frame_rate))
    klass = genmodel_class(name, lm.cfg)
    conditioners = lm.condition_provider.conditioners
    if "self_wav" in conditioners:
        if klass.__name__ != "MusicGen":
            raise ModelLoadError(f"could not load '{name}': wrong format: {files[LM_FILE]} has a waveform "
                                 "(self_wav) conditioner, which AudioGen does not support") from None
        conditioners["self_wav"].match_len_on_eval = True  # as MusicGen.get_pretrained
        conditioners["self_wav"]._use_masking = False
    with _wrong_format(name, files[LM_FILE], "its config cannot build a generation model"):
        genmodel = klass(name=name, compression_model=compression_model, lm=lm)  # max: dataset.segment_duration
    return LoadedCheckpoint(genmodel, files, sha256)


def genmodel_class(name: str, cfg: DictConfig):
    """``MAGNeT``, ``MusicGen`` or ``AudioGen`` for the model `name` with LM config `cfg`.

    0. ``cfg.lm_model`` 'transformer_lm_magnet' (audiocraft's MAGNeT LM, text to music or to sound) -> MAGNeT;
    1. ``cfg.solver``, which audiocraft's training writes ('audiogen' or 'musicgen':
       config/solver/{audiogen,musicgen}/default.yaml), so it is in every released or exported LM config;
    2. else the name: 'musicgen' in the hub id or the folder name -> MusicGen;
    3. else AudioGen (the text-to-sound model this project explains).
    """
    from audiocraft.models import MAGNeT, AudioGen, MusicGen
    if cfg.get("lm_model") == "transformer_lm_magnet":
        return MAGNeT
    solver = str(cfg.get("solver", "") or "").lower()
    if solver in ("audiogen", "musicgen"):
        return MusicGen if solver == "musicgen" else AudioGen
    return MusicGen if "musicgen" in Path(str(name)).name.lower() else AudioGen


# ---------------------------------------------------------------------------------------------------- files
def checkpoint_file(name: str, filename: str) -> Path:
    """The local path of `filename` of model `name`: in the folder `name`, or in the Hugging Face cache.

    For a hub id, ``hf_hub_download(local_files_only=True)`` first; only when the file is not cached and
    HF_HUB_OFFLINE is not set, a real download with huggingface_hub's logging silenced (no retry lines).
    The cache is ``$AUDIOCRAFT_CACHE_DIR`` when set (as ``audiocraft.models.loaders._get_state_dict``), else
    Hugging Face's (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``).
    """
    if Path(name).is_dir():
        path = Path(name) / filename
        if not path.is_file():
            raise ModelLoadError(f"could not load '{name}': {path} does not exist (a model folder holds {LM_FILE} "
                                 f"and {COMPRESSION_FILE}, as audiocraft.utils.export writes them)") from None
        return path
    from huggingface_hub import hf_hub_download
    cache = os.environ.get("AUDIOCRAFT_CACHE_DIR") or hf_cache_dir()
    try:
        return Path(hf_hub_download(name, filename, cache_dir=cache, local_files_only=True))
    except Exception:  # noqa: BLE001  LocalEntryNotFoundError, or an invalid repo id
        pass
    why = "HF_HUB_OFFLINE is set"
    if not hub_offline():
        try:
            with quiet_hub():
                return Path(hf_hub_download(name, filename, cache_dir=cache))
        except Exception as error:  # noqa: BLE001  no network, repository or file not found, gated...
            why = f"it cannot be downloaded here ({brief(error)})"
    raise ModelLoadError(f"could not load '{name}': its {filename} is not in the Hugging Face cache ({cache}) and "
                         f"{why}; run once with internet access to fill the cache, set HF_HOME to a cache that "
                         "holds it, or use the model 'toysounds' that is embedded in the package") from None


def hf_cache_dir() -> str:
    """Hugging Face's hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return constants.HF_HUB_CACHE


def hub_offline() -> bool:
    from huggingface_hub import constants
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def in_hf_cache(repo_id: str, filename: str = "config.json") -> bool:
    from huggingface_hub import try_to_load_from_cache
    try:
        return isinstance(try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir()), str)
    except Exception:  # noqa: BLE001  an invalid repo id is not in the cache
        return False


def _download_error(repo_id: str) -> str | None:
    """None if ``config.json`` of `repo_id` downloads (quietly), else why not: one probe of the network before
    transformers' ``from_pretrained``, which would retry file after file for minutes when offline."""
    from huggingface_hub import hf_hub_download
    try:
        with quiet_hub():
            hf_hub_download(repo_id, "config.json", cache_dir=hf_cache_dir())
    except Exception as error:  # noqa: BLE001
        return f"it cannot be downloaded here ({brief(error)})"
    return None


@contextlib.contextmanager
def quiet_hub():
    """Silence huggingface_hub / transformers logging ("Retrying in 1s", offline notices) and warnings."""
    loggers = [logging.getLogger(n) for n in _RETRY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 (hex) of the file at `path`, read in 1 MiB chunks (checkpoints are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: Path, name: str) -> dict:
    """``torch.load(path, weights_only=True)`` with `SAFE_GLOBALS` allowed; anything else is refused."""
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            pkg = torch.load(path, map_location="cpu", weights_only=True)  # as _get_state_dict: device='cpu'
    except Exception as error:  # noqa: BLE001  UnpicklingError, RuntimeError (zip), EOFError, OSError...
        why = ("it holds objects other than tensors and an OmegaConf config, which torch.load(weights_only=True) "
               "refuses to unpickle; use a checkpoint written by audiocraft.utils.export"
               if "Unsupported global" in str(error) else
               "it is truncated or corrupt, or not a torch checkpoint: download or export it again")
        raise ModelLoadError(f"could not load '{name}': {path} is unreadable ({brief(error)}); {why}") from None
    if not isinstance(pkg, dict):
        raise ModelLoadError(f"could not load '{name}': wrong format: {path} holds a {type(pkg).__name__}, not "
                             "audiocraft's checkpoint dict with 'xp.cfg' and 'best_state'") from None
    return pkg


# ---------------------------------------------------------------------------------------------------- models
def build_compression_model(pkg: dict, path: Path, name: str, device):
    """As ``audiocraft.models.loaders.load_compression_model``: a ``pretrained`` codec it points at, or one
    built from ``xp.cfg`` by ``builders.get_compression_model`` with ``best_state`` loaded."""
    from audiocraft.models import builders
    if "pretrained" in pkg:
        return _pretrained_compression(str(pkg["pretrained"]), path, name, device)
    cfg = _config(pkg, path, name)
    with open_dict(cfg):
        cfg.device = str(device)
    with _wrong_format(name, path, "its config cannot build a compression model"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated", category=FutureWarning)  # seanet
        model = builders.get_compression_model(cfg)
    _load_state(model, pkg, path, name)
    return model.eval()


def build_lm_model(pkg: dict, path: Path, name: str, device, frame_rate: int | None = None):
    """As ``audiocraft.models.loaders.load_lm_model``: ``xp.cfg`` with the device, float32 on CPU else float16,
    three training-only keys removed (``_delete_param``), ``builders.get_lm_model``, ``best_state`` loaded,
    eval mode, and ``model.cfg = cfg`` (``BaseGenModel`` reads ``cfg.dataset.segment_duration`` from it).
    A MAGNeT LM (``lm_model: transformer_lm_magnet``) also gets, as ``load_lm_model_magnet``, the codec's
    `frame_rate`, the segment duration and the span length in ``transformer_lm``; audiocraft's switch to the
    xformers backend is not made (`lightning_agx.models.audiocraft.magnet.stage_attention` applies the stage
    masks under the 'torch' backend)."""
    from audiocraft.models import builders
    from audiocraft.models.loaders import _delete_param
    cfg = _config(pkg, path, name)
    with open_dict(cfg):
        cfg.device = str(device)
        cfg.dtype = "float32" if cfg.device == "cpu" else "float16"
    _delete_param(cfg, "conditioners.self_wav.chroma_stem.cache_path")
    _delete_param(cfg, "conditioners.args.merge_text_conditions_p")
    _delete_param(cfg, "conditioners.args.drop_desc_p")
    if cfg.get("lm_model") == "transformer_lm_magnet":
        with _wrong_format(name, path, "its MAGNeT config lacks dataset.segment_duration or masking.span_len"), \
                open_dict(cfg):
            cfg.transformer_lm.compression_model_framerate = int(frame_rate or 50)
            cfg.transformer_lm.segment_duration = cfg.dataset.segment_duration
            cfg.transformer_lm.span_len = cfg.masking.span_len
    t5 = _t5_names(cfg)
    for missing in (t for t in t5 if not in_hf_cache(t)):  # fail in seconds, not after transformers' retries
        why = "HF_HUB_OFFLINE is set" if hub_offline() else _download_error(missing)
        if why:
            raise _t5_error(name, missing, why)
    try:
        with quiet_hub():
            model = builders.get_lm_model(cfg)
    except Exception as error:  # noqa: BLE001
        missing = [t for t in t5 if not in_hf_cache(t)]
        if missing:
            raise _t5_error(name, missing[0], f"it cannot be downloaded here ({brief(error)})") from None
        if isinstance(error, OSError):  # a conditioner's own download (e.g. demucs for ChromaStemConditioner)
            raise ModelLoadError(f"could not load '{name}': building the LM of {path} failed "
                                 f"({brief(error)})") from None
        raise _format_error(name, path, "its config cannot build an LM", error) from None
    _load_state(model, pkg, path, name)
    model.eval()
    model.cfg = cfg
    return model


def _pretrained_compression(pretrained: str, path: Path, name: str, device):
    """``CompressionModel.get_pretrained(pkg['pretrained'])`` (audiocraft/models/encodec.py): DAC, the debug
    codec, an exported checkpoint path, or a Hugging Face encodec (``facebook/encodec_32khz``) via transformers."""
    from audiocraft.models.encodec import CompressionModel
    hub = pretrained not in ("dac_44khz", "dac_24khz", "debug_compression_model") and not Path(pretrained).exists()
    if hub and not in_hf_cache(pretrained):
        why = "HF_HUB_OFFLINE is set" if hub_offline() else _download_error(pretrained)
        if why:
            raise ModelLoadError(f"could not load '{name}': {path} points at the codec '{pretrained}', which is "
                                 f"not in the Hugging Face cache ({hf_cache_dir()}) and {why}; run once with "
                                 "internet access, set HF_HOME to a cache that holds it, or use the model "
                                 "'toysounds' that is embedded in the package") from None
    try:
        with quiet_hub():
            return CompressionModel.get_pretrained(pretrained, device=device)
    except Exception as error:  # noqa: BLE001
        raise ModelLoadError(f"could not load '{name}': the codec '{pretrained}' that {path} points at could not "
                             f"be loaded ({brief(error)})") from None


def _config(pkg: dict, path: Path, name: str) -> DictConfig:
    """``OmegaConf.create(pkg['xp.cfg'])``, a DictConfig or a YAML string, as the loaders; checks 'best_state'."""
    for key in ("xp.cfg", "best_state"):
        if key not in pkg:
            raise ModelLoadError(f"could not load '{name}': wrong format: {path} has no '{key}' (keys: "
                                 f"{', '.join(map(str, sorted(pkg, key=str)))}); expected audiocraft's checkpoint "
                                 "dict with 'xp.cfg' and 'best_state'") from None
    with _wrong_format(name, path, "its 'xp.cfg' is not a config"):
        cfg = OmegaConf.create(pkg["xp.cfg"])
        if not isinstance(cfg, DictConfig):
            raise TypeError(f"'xp.cfg' is a {type(cfg).__name__}, not a mapping")
    return cfg


def _load_state(model, pkg: dict, path: Path, name: str) -> None:
    with _wrong_format(name, path, "its 'best_state' does not match the model its config builds"):
        model.load_state_dict(pkg["best_state"])


def _t5_names(cfg: DictConfig) -> list[str]:
    """The T5 encoders the LM config asks for (``conditioners.<name>.model: t5``, ``.t5.name``)."""
    conditioners = cfg.get("conditioners") or {}
    return [str(c.t5.name) for c in conditioners.values()
            if isinstance(c, DictConfig) and c.get("model") == "t5" and c.get("t5") is not None]


def _t5_error(name: str, t5: str, why: str) -> ModelLoadError:
    return ModelLoadError(f"could not load '{name}': its T5 text encoder '{t5}' ({_T5_HOW}) is not in the Hugging "
                          f"Face cache ({hf_cache_dir()}) and {why}; run once with internet access to fill the "
                          "cache, set HF_HOME to a cache that holds it, or use the model 'toysounds' that is "
                          "embedded in the package")


def _format_error(name: str, path: Path, what: str, error: BaseException) -> ModelLoadError:
    return ModelLoadError(f"could not load '{name}': wrong format: {path}: {what} ({brief(error)})")


@contextlib.contextmanager
def _wrong_format(name: str, path: Path, what: str):
    """Turn a config / state-dict error inside the block into a one-line 'wrong format' `ModelLoadError`."""
    try:
        yield
    except ModelLoadError:
        raise
    except (KeyError, AttributeError, TypeError, ValueError, AssertionError, RuntimeError,
            OmegaConfBaseException) as error:  # missing key, bad value, state-dict mismatch
        raise _format_error(name, path, what, error) from None


def brief(error: BaseException, limit: int = 240) -> str:
    """``Type: first sentence of the message``, shortened, on one line (torch's unpickling message is a page,
    omegaconf's adds ``full_key`` / ``object_type`` lines)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split("\n    full_key:")[0]
    match = re.search(r"WeightsUnpickler error: (.*?)(?: Please use|$)", text, flags=re.S)
    if match:
        text = match.group(1)
    text = text.strip().split("\n\n")[0]  # first paragraph
    text = re.split(r"(?<=[.!?])\s", " ".join(text.split()), maxsplit=1)[0]
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


__all__ = ["COMPRESSION_FILE", "LM_FILE", "LoadedCheckpoint", "SAFE_GLOBALS", "genmodel_class", "load_checkpoint",
           "read_checkpoint", "sha256_file"]
