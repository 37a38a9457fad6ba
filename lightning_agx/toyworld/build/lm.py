"""Stage ``lm``: the text-to-audio LM, next-token training on the encoded clips of the ``codes`` stage (their
captions as text), with word dropout; optionally fine-tuned from an earlier LM."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lightning_agx.toyworld.build.loop import ckpt_path, log, train
from lightning_agx.toyworld.models import ToyConfig, build_lm


def init_lm_from(lm, path: Path) -> None:
    """Start the LM from the weights in `path` (an earlier LM): text-table rows of words it did not have
    (appended at the end of the vocabulary) start as its <unk> row."""
    from safetensors.torch import load_file
    state = load_file(str(path))
    key = next(k for k in state if k.endswith("embed.weight") and "condition_provider" in k)
    old, new = state[key], lm.state_dict()[key]
    if old.shape[0] < new.shape[0]:
        grown = old[1:2].repeat(new.shape[0], 1)
        grown[:old.shape[0]] = old
        state[key] = grown
    lm.load_state_dict(state, strict=True)
    log(f"lm initialised from {path} ({old.shape[0]} -> {new.shape[0]} text rows)")


def train_lm(cfg: ToyConfig, out: Path, device: str, steps: int, budget_s: float, seed: int,
             init: Path | None = None, word_dropout: float = 0.2, lr: float = 1e-3, warmup: int = 200) -> dict:
    """Next-token training on the encoded clips, with lightning_agx's cross-attention (padding keys masked,
    as in every use of the model) and word dropout: each filler word becomes <unk> with probability
    `word_dropout`, so that words outside the vocabulary read as fillers. `init` starts from earlier weights.
    Writes ``lm.safetensors``."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    from lightning_agx.models.attention import edit_cross_attention
    from lightning_agx.toyworld.grammar import filler_words
    from lightning_agx.toyworld.tokenizer import VocabTokenizer
    torch.manual_seed(seed)
    data = torch.load(out / "_build" / "codes_train.pt", weights_only=True)
    codes_all, captions = data["codes"].long(), data["captions"]
    tokenizer = VocabTokenizer(cfg.vocab)
    tokenizer.word_dropout, tokenizer.dropout_words = word_dropout, filler_words()
    tokenizer.generator = torch.Generator().manual_seed(seed + 3)
    lm = build_lm(cfg, tokenizer).to(device).train()
    if init is not None:
        init_lm_from(lm, init)
    opt = torch.optim.AdamW(lm.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)

    def make_step(start: int):
        rng = np.random.default_rng([seed, 2, start])

        def step_loss():
            idx = rng.integers(0, len(captions), 32)
            codes = codes_all[torch.from_numpy(idx)].to(device)  # [B, K, T]
            conds = [ConditioningAttributes(text={"description": captions[i]}) for i in idx]
            with edit_cross_attention(lm):
                pred = lm.compute_predictions(codes, conds)
            valid = pred.mask  # [B, K, T]
            loss = F.cross_entropy(pred.logits[valid], codes[valid])
            return loss, (loss,)
        return step_loss

    return train("lm", lm, opt, make_step, metrics=("ce",), steps=steps, budget_s=budget_s, peak_lr=lr,
                 warmup=warmup, weights=out / "lm.safetensors", ckpt=ckpt_path(out, "lm"), clip=1.0)
