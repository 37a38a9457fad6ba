"""Import audiocraft the way lightning_agx uses it.

audiocraft imports xformers at import time; on CPU its C++ kernels are missing, so we select audiocraft's
'torch' attention backend (``torch.nn.functional.scaled_dot_product_attention``) before any model is built.
"""
import logging
import warnings

LM_SAMPLING_KEYS = ("use_sampling", "temp", "top_k", "top_p", "cfg_coef")  # audiocraft's LM sampling settings

_READY = False


def ensure_audiocraft() -> None:
    """Import audiocraft once, quietly, with the 'torch' attention backend."""
    global _READY
    if _READY:
        return
    xformers_logger = logging.getLogger("xformers")
    level = xformers_logger.level
    xformers_logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*xFormers.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="xformers")
        from audiocraft.modules.transformer import set_efficient_attention_backend
    xformers_logger.setLevel(level)
    set_efficient_attention_backend("torch")
    _READY = True
