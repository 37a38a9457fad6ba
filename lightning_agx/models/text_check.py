"""Prompt checks that need a model's tokenizer, run before the model's weights are loaded where they can be.

The embedded ToySounds models' tokenizer is the world's vocabulary (``config.json``; the catalogue names it),
so their prompts are checked before anything is loaded. The other models' tokenizers come with the model
(audiocraft builds T5's with the conditioner): their prompts are checked by `TAGModel.check_text` right after
loading, before any generation.
"""
from __future__ import annotations

from .base import check_tokens
from .catalogue import entry, resolve


def check_text_before_loading(name, prompts: list[str]) -> None:
    """The prompts of a catalogued model with a closed vocabulary (its catalogued ``tokenizer``: the embedded
    world's models share the world's), checked before its weights load; other models: nothing to do here."""
    found = entry(name)
    if found is None or found.tokenizer is None:
        return
    tokenizer = resolve(found.tokenizer)()
    check_tokens(prompts, [tokenizer.words(p) for p in prompts], tokenizer.max_length)


__all__ = ["check_text_before_loading"]
