"""Lite Transformer's encoder (Wu et al. 2020, "Lite Transformer with Long-Short Range
Attention") in plain torch, as a MiniLM with other layers.

Each layer is a Long-Short Range Attention (LSRA) block: the hidden channels are split in two
halves; self-attention reads the first (the long-range context), a lightweight convolution the
second (the local context: Wu et al. 2019, "Pay Less Attention with Lightweight and Dynamic
Convolutions"); the two outputs are concatenated and mixed by a linear layer, then the residual,
a LayerNorm and BERT's feed-forward block, post-norm as MiniLM's layers.

`LiteTransformer` keeps MiniLM's embeddings, forward signature, `layers` ModuleList and
`tokenizer`, so intinfer.compress.EncoderTask, PooledEncoder and intinfer.distill take it as a
MiniLM. `LiteTransformer.from_teacher(teacher, ...)` and `plain_student(teacher, ...)` build an
LSRA and a plain student with the same start: the teacher's embeddings (their first `hidden`
dimensions), every layer random.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from .minilm import MASK_BIAS, MiniLM, _Layer

__all__ = ["ConvBranch", "LSRALayer", "LightweightConv", "LiteTransformer", "plain_student"]

PADDINGS = ("centred", "causal")


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_kernel(kernel_size, padding) -> None:
    _positive("kernel_size", kernel_size)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    if padding == "centred" and kernel_size % 2 == 0:
        raise ValueError(f"kernel_size {kernel_size} is even: centred padding needs an odd kernel (kernel_size // 2 "
                         "tokens on each side); give an odd kernel_size or padding='causal'")


def _check_lsra(hidden, heads, conv_heads, kernel_size, intermediate, padding) -> None:
    for name, value in (("hidden", hidden), ("heads", heads), ("conv_heads", conv_heads),
                        ("intermediate", intermediate)):
        _positive(name, value)
    if hidden % 2:
        raise ValueError(f"hidden {hidden} is odd: LSRA splits the channels into two halves (attention, convolution)")
    half = hidden // 2
    if half % heads:
        raise ValueError(f"heads {heads} does not divide the attention half of hidden {hidden} ({half} channels)")
    if half % conv_heads:
        raise ValueError(f"conv_heads {conv_heads} does not divide the convolution half of hidden {hidden} "
                         f"({half} channels)")
    _check_kernel(kernel_size, padding)


class LightweightConv(torch.nn.Module):
    """A depthwise 1-d convolution over the sequence whose `heads` kernels of `kernel_size` taps are
    shared by groups of channels (channel c uses kernel c // (channels / heads)) and softmax-
    normalized over the taps at every forward (Wu et al. 2019). Centred padding (kernel_size // 2
    zeros on each side, an odd kernel) or causal (kernel_size - 1 zeros on the left: token i reads
    tokens i - kernel_size + 1 .. i). forward(y [B, channels, S]) -> [B, channels, S]."""

    def __init__(self, channels: int, heads: int, kernel_size: int, padding: str = "centred"):
        super().__init__()
        _positive("channels", channels)
        _positive("heads", heads)
        if channels % heads:
            raise ValueError(f"heads {heads} does not divide the {channels} channels")
        _check_kernel(kernel_size, padding)
        self.channels, self.heads, self.kernel_size, self.padding = channels, heads, kernel_size, padding
        self.weight = torch.nn.Parameter(torch.empty(heads, kernel_size))
        torch.nn.init.xavier_uniform_(self.weight)

    def kernel(self) -> torch.Tensor:
        """The normalized kernels [heads, kernel_size]: each head's taps sum to 1."""
        return torch.softmax(self.weight, dim=-1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        w = self.kernel().repeat_interleave(self.channels // self.heads, dim=0).unsqueeze(1)
        if self.padding == "causal":
            return F.conv1d(F.pad(y, (self.kernel_size - 1, 0)), w, padding=0, groups=self.channels)
        return F.conv1d(y, w, padding=self.kernel_size // 2, groups=self.channels)


class ConvBranch(torch.nn.Module):
    """LSRA's convolution branch on `channels` channels: a linear layer to twice the channels, GLU,
    the padded tokens zeroed (so that no convolution reads them), the lightweight convolution, a
    linear layer. forward(x [B, S, channels], attention_mask [B, S]) -> [B, S, channels]."""

    def __init__(self, channels: int, heads: int, kernel_size: int, padding: str = "centred"):
        super().__init__()
        self.glu_in = torch.nn.Linear(channels, 2 * channels)
        self.conv = LightweightConv(channels, heads, kernel_size, padding)
        self.conv_out = torch.nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        y = F.glu(self.glu_in(x), dim=-1)
        y = y * attention_mask[..., None].to(y.dtype)
        y = self.conv(y.transpose(1, 2)).transpose(1, 2)
        return self.conv_out(y)


class LSRALayer(_Layer):
    """A Long-Short Range Attention block: MiniLM's layer with its self-attention (`heads` heads)
    on the first half of the channels and the convolution branch on the second, their outputs
    concatenated and mixed by `attn_out`, residual + LayerNorm; then the feed-forward block
    (GELU), residual + LayerNorm. forward(x [B, S, hidden], mask_bias [B, 1, 1, S] (MiniLM's
    additive key mask), attention_mask [B, S]) -> [B, S, hidden]."""

    def __init__(self, hidden: int, heads: int, conv_heads: int, kernel_size: int, intermediate: int, eps: float,
                 padding: str = "centred"):
        _check_lsra(hidden, heads, conv_heads, kernel_size, intermediate, padding)
        super().__init__(hidden, heads, intermediate, eps, attention_width=hidden // 2)
        self.half = hidden // 2
        self.conv = ConvBranch(self.half, conv_heads, kernel_size, padding)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.attend(x[..., :self.half], mask_bias),
                           self.conv(x[..., self.half:], attention_mask)], dim=-1)
        x = self.attn_norm(self.attn_out(mixed) + x)
        return self.feed_forward(x)


def _inherit_embeddings(student: MiniLM, teacher: MiniLM) -> None:
    """The student's embeddings and embedding LayerNorm become the teacher's first
    `student.hidden` dimensions and first `student.max_positions` positions (MiniLM.take_embeddings);
    its tokenizer the teacher's, cut at the student's positions when the teacher's is longer."""
    if student.hidden > teacher.hidden:
        raise ValueError(f"hidden {student.hidden} is wider than the teacher's {teacher.hidden}: the student's "
                         "embeddings are the teacher's first dimensions")
    if student.max_positions > teacher.max_positions:
        raise ValueError(f"max_positions {student.max_positions} is more than the teacher's {teacher.max_positions}")
    student.take_embeddings(teacher)
    tokenizer = teacher.tokenizer
    if tokenizer is not None and tokenizer.max_length > student.max_positions:
        tokenizer = copy.copy(tokenizer)
        tokenizer.max_length = student.max_positions
    student.tokenizer = tokenizer


def _teacher_config(teacher, max_positions: int | None) -> dict:
    if not isinstance(teacher, MiniLM):
        raise TypeError(f"the teacher must be an intinfer.models.MiniLM, got {type(teacher).__name__}")
    config = teacher.embedding_config()
    return config if max_positions is None else dict(config, max_positions=max_positions)


class LiteTransformer(MiniLM):
    """Lite Transformer's encoder: MiniLM's embeddings and interface (forward(input_ids,
    attention_mask, token_type_ids) -> last hidden state [B, S, hidden]; `layers`; `tokenizer`)
    with `layers` LSRA blocks of `heads` attention heads and `conv_heads` convolution kernels of
    `kernel_size` taps on hidden / 2 channels each, and a feed-forward block of `intermediate`
    units. `padding`: "centred" (each token sees kernel_size // 2 neighbours on each side; an odd
    kernel) or "causal" (the kernel_size - 1 tokens before it). Padded tokens are zeroed before the
    convolution and masked out of the attention, so they do not change the real tokens' outputs."""

    def __init__(self, vocab_size: int = 30522, hidden: int = 256, layers: int = 4, heads: int = 4,
                 conv_heads: int = 4, kernel_size: int = 7, intermediate: int = 1024, max_positions: int = 512,
                 type_vocab_size: int = 2, eps: float = 1e-12, padding: str = "centred"):
        _check_lsra(hidden, heads, conv_heads, kernel_size, intermediate, padding)
        super().__init__(vocab_size=vocab_size, hidden=hidden, layers=0, heads=1, intermediate=intermediate,
                         max_positions=max_positions, type_vocab_size=type_vocab_size, eps=eps)
        self.layers = torch.nn.ModuleList(LSRALayer(hidden, heads, conv_heads, kernel_size, intermediate, eps, padding)
                                          for _ in range(layers))

    @classmethod
    def from_pretrained(cls, folder=None):
        raise TypeError("there are no pretrained Lite Transformer weights: build a student with "
                        "LiteTransformer.from_teacher(MiniLM.from_pretrained(), ...)")

    @classmethod
    def from_teacher(cls, teacher: MiniLM, hidden: int = 256, layers: int = 4, heads: int = 4, conv_heads: int = 4,
                     kernel_size: int = 7, intermediate: int = 1024, padding: str = "centred",
                     max_positions: int | None = None) -> "LiteTransformer":
        """A LiteTransformer of the sizes given with the teacher's vocabulary, token types and
        LayerNorm eps, whose embeddings and embedding LayerNorm are the teacher's first `hidden`
        dimensions (as intinfer.distill.narrow slices them) and first `max_positions` positions
        (default: all of the teacher's), its layers random (torch's global generator), its tokenizer
        the teacher's (cut at `max_positions` tokens when that is fewer); in the teacher's mode."""
        student = cls(hidden=hidden, layers=layers, heads=heads, conv_heads=conv_heads, kernel_size=kernel_size,
                      intermediate=intermediate, padding=padding, **_teacher_config(teacher, max_positions))
        _inherit_embeddings(student, teacher)
        return student.train(teacher.training)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x, attention_mask = self._embed(input_ids, attention_mask, token_type_ids)
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * MASK_BIAS
        for layer in self.layers:
            x = layer(x, mask_bias, attention_mask)
        return x


def plain_student(teacher: MiniLM, hidden: int, layers: int, heads: int, intermediate: int,
                  max_positions: int | None = None) -> MiniLM:
    """A plain MiniLM of the sizes given built as LiteTransformer.from_teacher builds its students:
    the teacher's vocabulary, token types and eps, its embeddings' first `hidden` dimensions and
    first `max_positions` positions, random layers, the teacher's tokenizer; in the teacher's mode.
    (intinfer.distill.narrow also inherits the layers' weights; this is the like-for-like baseline
    of an LSRA student.)"""
    student = MiniLM(hidden=hidden, layers=layers, heads=heads, intermediate=intermediate,
                     **_teacher_config(teacher, max_positions))
    _inherit_embeddings(student, teacher)
    return student.train(teacher.training)
