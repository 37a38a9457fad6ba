"""Speed and memory options of the frozen LM's teacher-forced passes (the passes every optimisation step runs).

`Performance` holds four options; each is None by default, meaning "on where it helps, on CUDA only", so a
CPU run computes exactly what it computed before these options existed:

- ``autocast``: the frozen LM with the mask runs under ``torch.autocast`` in this dtype ("bfloat16",
  "float16" or "off"); the latents it returns, the losses, the explainer and Adam stay float32.
  Auto: bfloat16 on CUDA (float16 where the GPU has no bfloat16), off elsewhere.
- ``tf32``: TF32 tensor-core matmuls and convolutions for what stays float32 (the explainer's MLPs, the
  codec). Auto: on on CUDA. (A CUDA-only flag: it changes nothing on a CPU.)
- ``compile``: ``torch.compile`` the LM's transformer for the teacher-forced pass: "off" or a
  ``torch.compile`` mode ("default", "reduce-overhead" = CUDA graphs, "max-autotune"). Auto: off (the first
  pass of every new shape compiles for tens of seconds, and nobody measured what it buys on a GPU yet:
  ``benchmarks/explain_speed.py --compile default`` measures it).
- ``checkpointing``: audiocraft's per-layer activation checkpointing (``torch.utils.checkpoint``,
  non-reentrant) in passes that build a graph, trading one more forward for the activations' memory.
  Auto: on on CUDA when a pass has at least `CHECKPOINT_TOKENS` rows x steps (long clips or big batches).

``Performance.resolve(device)`` gives the `Resolved` options the model applies (`AudiocraftLM.forward_steps`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from .errors import UserError

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "off": None}
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")
CHECKPOINT_TOKENS = 8192  # e.g. 8 prompts x factual/counterfactual x 10 s (500 steps) of audiogen-medium


@dataclass(frozen=True)
class Resolved:
    """The options as applied on one device."""

    autocast: torch.dtype | None
    tf32: bool
    compile: str  # a COMPILE_MODES entry
    checkpoint_tokens: int | None  # checkpoint passes with rows x steps >= this; None: never

    def precision(self, device: torch.device):
        """Context: autocast (if on) and the TF32 flags (if on) for the block."""
        stack = contextlib.ExitStack()
        if self.tf32:
            stack.enter_context(tf32_matmuls())
        if self.autocast is not None:
            stack.enter_context(torch.autocast(device_type=device.type, dtype=self.autocast))
        return stack

    def checkpoints(self, tokens: int) -> bool:
        return self.checkpoint_tokens is not None and tokens >= self.checkpoint_tokens

    def describe(self) -> dict:
        return {"autocast": str(self.autocast).removeprefix("torch.") if self.autocast else "off",
                "tf32": self.tf32, "compile": self.compile,
                "checkpointing": ("off" if self.checkpoint_tokens is None else
                                  "on" if self.checkpoint_tokens == 0 else f">= {self.checkpoint_tokens} tokens")}


@dataclass(frozen=True)
class Performance:
    """Options of the teacher-forced passes; None: auto (see the module docstring)."""

    autocast: str | None = None
    tf32: bool | None = None
    compile: str | None = None
    checkpointing: bool | None = None

    def __post_init__(self) -> None:
        if self.autocast is not None and self.autocast not in AUTOCAST_DTYPES:
            raise UserError(f"unknown autocast dtype '{self.autocast}'; available: {', '.join(AUTOCAST_DTYPES)}")
        if self.compile is not None and self.compile not in COMPILE_MODES:
            raise UserError(f"unknown compile mode '{self.compile}'; available: {', '.join(COMPILE_MODES)}")

    def resolve(self, device: torch.device | str) -> Resolved:
        cuda = torch.device(device).type == "cuda"
        if self.autocast is None:
            autocast = (torch.bfloat16 if _bf16_supported() else torch.float16) if cuda else None
        else:
            autocast = AUTOCAST_DTYPES[self.autocast]
        tf32 = cuda if self.tf32 is None else bool(self.tf32)
        compile_mode = "off" if self.compile is None else self.compile
        if self.checkpointing is None:
            checkpoint_tokens = CHECKPOINT_TOKENS if cuda else None
        else:
            checkpoint_tokens = 0 if self.checkpointing else None
        return Resolved(autocast, tf32, compile_mode, checkpoint_tokens)


def _bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@contextlib.contextmanager
def tf32_matmuls():
    """TF32 for CUDA matmuls and cuDNN convolutions inside the block (the previous flags restored after)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def model_performance(tag, device: torch.device | None = None) -> Resolved:
    """The resolved options of a model (`Performance()` defaults for a model without its own)."""
    options = getattr(tag, "performance", None) or Performance()
    return options.resolve(device if device is not None else tag.device)


__all__ = ["CHECKPOINT_TOKENS", "Performance", "Resolved", "model_performance", "tf32_matmuls"]
