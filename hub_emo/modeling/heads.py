"""What sits on the backbone's hidden states: learned layer weights, pooling over frames, the
pooled features' standardiser and the classification head.

Copied as remote code with a saved model (beside modeling_hub_emo.py): imports only torch.
"""

from __future__ import annotations

import torch
from torch import nn

from .batched_forward import masked_mean

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class LayerWeights(nn.Module):
    """Softmax-normalised weights over hidden states (a module, so peft's modules_to_save keeps it)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted sum over dim 1 of (batch, layers, ...): frames (b, l, t, d) or pooled (b, l, d)."""
        if stacked.shape[1] != self.weights.numel():
            raise RuntimeError(
                f"got {stacked.shape[1]} hidden states, expected {self.weights.numel()} (is layerdrop > 0?)"
            )
        weights = torch.softmax(self.weights, dim=0)
        return torch.einsum("l,bl...->b...", weights.to(stacked.dtype), stacked), weights


class MeanPooling(nn.Module):
    """Mean over the frames the mask marks as real (all frames without a mask)."""

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return masked_mean(frames, mask)


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): attention-weighted mean and std."""

    def __init__(self, hidden_size: int, attention_size: int):
        super().__init__()
        self.score = nn.Sequential(
            nn.Linear(hidden_size, attention_size), nn.Tanh(), nn.Linear(attention_size, 1)
        )

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        scores = self.score(frames).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask.bool(), torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores, dim=1).unsqueeze(-1)
        mean = (alpha * frames).sum(dim=1)
        var = (alpha * frames.pow(2)).sum(dim=1) - mean.pow(2)
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1)


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class PooledStandardizer(nn.BatchNorm1d):
    """Per-dimension standardisation of pooled features with running statistics.

    SSL hidden states carry large per-dimension offsets next to small between-clip
    differences (measured on the demo backbone: offsets ~0.6-1.1, between-clip std ~0.05);
    an MLP head then barely learns, while probes, which standardise, do. A batch of one
    (a ragged last batch) is normalised with the running statistics instead of failing.
    """

    def __init__(self, size: int):
        super().__init__(size, affine=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if self.training and _world_size() > 1:
            return self._synchronised(pooled)
        if self.training and pooled.shape[0] < 2:
            return nn.functional.batch_norm(pooled, self.running_mean, self.running_var, eps=self.eps)
        return super().forward(pooled)

    def _synchronised(self, pooled: torch.Tensor) -> torch.Tensor:
        """Batch statistics over every process's batch, so a DDP run normalises (and updates its
        running statistics) as one process with the whole batch would; torch's SyncBatchNorm
        does this on GPUs only. The all-reduces are differentiable, as the gradient needs."""
        from torch.distributed.nn.functional import all_reduce

        count = all_reduce(torch.tensor([float(pooled.shape[0])], dtype=pooled.dtype, device=pooled.device))
        if count.item() < 2:
            return nn.functional.batch_norm(pooled, self.running_mean, self.running_var, eps=self.eps)
        mean = all_reduce(pooled.sum(0)) / count
        var = all_reduce((pooled - mean).pow(2).sum(0)) / count
        with torch.no_grad():
            self.num_batches_tracked += 1
            self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
            self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * count / (count - 1))
        return (pooled - mean) / torch.sqrt(var + self.eps)


class EmoHead(nn.Module):
    """MLP head: [standardise], then [dropout → linear → activation] per hidden size, then
    dropout → linear to classes."""

    def __init__(
        self, in_size: int, hidden_sizes, num_labels: int, activation: str, dropout: float, standardize: bool = True
    ):
        super().__init__()
        layers: list[nn.Module] = [PooledStandardizer(in_size)] if standardize else []
        for size in hidden_sizes:
            layers += [nn.Dropout(dropout), nn.Linear(in_size, size), ACTIVATIONS[activation]()]
            in_size = size
        layers += [nn.Dropout(dropout), nn.Linear(in_size, num_labels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.layers(pooled)
