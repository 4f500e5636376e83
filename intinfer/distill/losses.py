"""Distillation losses (docs/distillation.md): Hinton's soft targets, embedding matching, and
MiniLM's self-attention relations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["soft_targets", "hinton", "embedding_loss", "relation_kl", "OUTPUT_LOSSES"]


def soft_targets(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton et al. (2015): KL(softmax(teacher / T) || softmax(student / T)) over the last axis,
    averaged over the rest, times T^2 so that its gradients keep their size as T changes."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    t = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    s = F.log_softmax(student_logits / temperature, dim=-1)
    kl = (t.exp() * (t - s)).sum(-1)
    return kl.mean() * temperature ** 2


def hinton(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor | None = None,
           temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Soft targets alone, or with hard labels: alpha * soft_targets + (1 - alpha) * the cross
    entropy of the student's own (T = 1) logits with `labels` (class indices)."""
    soft = soft_targets(student_logits, teacher_logits, temperature)
    if labels is None:
        return soft
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    return alpha * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


def _cosine(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return 1.0 - F.cosine_similarity(student, teacher.detach(), dim=-1).mean()


def _mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(student, teacher.detach())


EMBEDDING_LOSSES = {"cosine": _cosine, "mse": _mse}


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str = "cosine") -> torch.Tensor:
    """1 - cosine (over the last axis, averaged) or the mean squared error of two embeddings."""
    if kind not in EMBEDDING_LOSSES:
        raise ValueError(f"unknown embedding loss '{kind}'; use one of {sorted(EMBEDDING_LOSSES)}")
    if student.shape != teacher.shape:
        raise ValueError(f"the student's output has shape {list(student.shape)}, the teacher's "
                         f"{list(teacher.shape)}: an embedding loss compares equal shapes")
    return EMBEDDING_LOSSES[kind](student, teacher)


def _relation_log_probs(a: torch.Tensor, b: torch.Tensor, heads: int, mask_bias: torch.Tensor) -> torch.Tensor:
    """log softmax(a_h b_h^T / sqrt(d) + mask_bias) of a, b [B, S, W] split into `heads` relation
    heads of W / heads: [B, heads, S, S]."""
    batch, seq, width = a.shape
    if width % heads:
        raise ValueError(f"a width of {width} does not split into {heads} relation heads")
    d = width // heads
    a = a.reshape(batch, seq, heads, d).transpose(1, 2)
    b = b.reshape(batch, seq, heads, d).transpose(1, 2)
    return F.log_softmax(a @ b.transpose(-1, -2) / math.sqrt(d) + mask_bias, dim=-1)


def relation_kl(student: tuple, teacher: tuple, heads: int, mask_bias: torch.Tensor,
                query_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM (Wang et al. 2020): KL(teacher relation || student relation) of one pair of vectors
    (a, b) per side, e.g. (queries, keys) for the attention distributions or (values, values) for
    the value relation, split into `heads` relation heads each (so the two widths may differ),
    summed over the keys and averaged over heads and the real queries (`query_mask` [B, S], 1 on
    real tokens). mask_bias [B, 1, 1, S]: the additive key mask the layers use."""
    t = _relation_log_probs(teacher[0].detach(), teacher[1].detach(), heads, mask_bias)
    s = _relation_log_probs(student[0], student[1], heads, mask_bias)
    kl = (t.exp() * (t - s)).sum(-1).mean(1)  # [B, S]
    weights = query_mask.to(kl.dtype)
    return (kl * weights).sum() / weights.sum().clamp(min=1.0)


OUTPUT_LOSSES = ("kl", "cosine", "mse")
