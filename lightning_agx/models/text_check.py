"""Prompt checks that need a model's tokenizer, run before the model's weights are loaded where they can be.

The embedded ToySounds model's tokenizer is its vocabulary (``config.json``), so its prompts are checked
before anything is loaded. The other models' tokenizers come with the model (audiocraft builds T5's with the
conditioner): their prompts are checked by `TAGModel.check_text` right after loading, before any
generation.
"""
from __future__ import annotations

from .base import check_tokens


def check_text_before_loading(name, prompts: list[str]) -> None:
    if name not in ("toysounds", "toysounds-diffusion"):  # the embedded world's two models share its vocabulary
        return
    from ..toyworld.load import load_config
    from ..toyworld.tokenizer import VocabTokenizer
    tokenizer = VocabTokenizer(load_config().vocab)
    check_tokens(prompts, [tokenizer.words(p) for p in prompts], tokenizer.max_length)


__all__ = ["check_text_before_loading"]
