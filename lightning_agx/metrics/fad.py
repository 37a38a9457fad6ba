"""Fréchet Audio Distance between the embeddings of a real and a generated set of audio.

    FAD = |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r^1/2 S_g S_r^1/2)^1/2)

The states are sums (embedding sum [E], outer-product sum [E, E], count) for each set, so they sync
across devices by summation; means and covariances are formed only in ``compute``.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torchmetrics import Metric


def _sqrtm_psd(a: Tensor) -> Tensor:
    """Square root of a symmetric PSD matrix by eigen-decomposition (negative eigenvalues clipped to 0)."""
    evals, evecs = torch.linalg.eigh(a)
    return (evecs * evals.clamp_min(0).sqrt()) @ evecs.T


def frechet_distance(mu_r: Tensor, cov_r: Tensor, mu_g: Tensor, cov_g: Tensor) -> Tensor:
    """Fréchet distance between N(mu_r, cov_r) and N(mu_g, cov_g), computed in float64.

    tr((S_r S_g)^1/2) = tr((S_r^1/2 S_g S_r^1/2)^1/2): the latter is symmetric PSD, so eigh is stable
    and never produces the complex parts ``scipy.linalg.sqrtm`` returns for near-singular products.
    """
    root_r = _sqrtm_psd(cov_r)
    cross = _sqrtm_psd(root_r @ cov_g @ root_r)
    return (mu_r - mu_g).square().sum() + cov_r.trace() + cov_g.trace() - 2 * cross.trace()


class FrechetAudioDistance(Metric):
    """FAD between a real and a generated set, from a pluggable embedder.

    Args:
        embedder: callable ``wav -> [B, E]`` (e.g. ``functools.partial(classifier.embed, sample_rate=16000)``
            or an ``nn.Module``, which is then moved with the metric); ``None`` means ``update``
            receives embeddings ``[B, E]`` directly.
        num_features: E, the embedding size (needed to allocate the states before any update).
        eps: added to the diagonal of both covariances. With fewer samples than dimensions the
            sample covariances are singular; eps keeps the square root well-conditioned. It shifts
            FAD by O(eps * E) for different sets and leaves a set against itself at 0.

    ``update(wav, real)`` adds a batch to the real (True) or generated (False) set; ``compute``
    needs at least 2 samples in each set.
    """

    full_state_update = False
    higher_is_better = False

    def __init__(self, embedder: Callable[[Tensor], Tensor] | None, num_features: int, eps: float = 1e-6,
                 **kwargs):
        super().__init__(**kwargs)
        self.embedder, self.num_features, self.eps = embedder, num_features, eps
        for name in ("real", "gen"):
            self.add_state(f"{name}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{name}_outer", torch.zeros(num_features, num_features, dtype=torch.float64),
                           dist_reduce_fx="sum")
            self.add_state(f"{name}_n", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, wav: Tensor, real: bool) -> None:
        if self.embedder is not None:
            with torch.no_grad():
                emb = self.embedder(wav)
        else:
            emb = wav
        if emb.dim() != 2 or emb.shape[1] != self.num_features:
            raise ValueError(f"embeddings must be [B, {self.num_features}], got shape {tuple(emb.shape)}")
        emb = emb.double()  # [B, E]
        name = "real" if real else "gen"
        setattr(self, f"{name}_sum", getattr(self, f"{name}_sum") + emb.sum(0))
        setattr(self, f"{name}_outer", getattr(self, f"{name}_outer") + emb.T @ emb)
        setattr(self, f"{name}_n", getattr(self, f"{name}_n") + emb.shape[0])

    def _gaussian(self, name: str) -> tuple[Tensor, Tensor]:
        n = int(getattr(self, f"{name}_n"))
        if n < 2:
            raise RuntimeError(f"FAD needs at least 2 {name} samples to estimate a covariance, got {n}")
        mu = getattr(self, f"{name}_sum") / n  # [E]
        cov = (getattr(self, f"{name}_outer") - n * torch.outer(mu, mu)) / (n - 1)  # [E, E], unbiased
        cov = (cov + cov.T) / 2 + self.eps * torch.eye(self.num_features, dtype=cov.dtype, device=cov.device)
        return mu, cov

    def compute(self) -> Tensor:
        mu_r, cov_r = self._gaussian("real")
        mu_g, cov_g = self._gaussian("gen")
        return frechet_distance(mu_r, cov_r, mu_g, cov_g)
