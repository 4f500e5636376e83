"""Students made from a teacher (docs/distillation.md, Students): fewer layers, a narrower hidden
size, a vocabulary shrunk to a corpus, a factorized embedding table. Each returns a new model and
leaves the teacher as it was."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch

__all__ = ["FactorizedEmbedding", "VocabularyReport", "factorize_embeddings", "narrow", "shrink_vocabulary",
           "take_layers"]

# Where the layer stacks of the models users bring live: intinfer.models.MiniLM, transformers'
# BERT/RoBERTa/MPNet (encoder.layer), and plain stacks.
LAYER_STACKS = ("layers", "encoder.layer", "layer", "blocks")


def _layer_stack(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList]:
    for path in LAYER_STACKS:
        try:
            stack = model.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(stack, torch.nn.ModuleList):
            return path, stack
    raise ValueError(f"{type(model).__name__} has no layer stack (a ModuleList at one of {list(LAYER_STACKS)})")


def take_layers(model: torch.nn.Module, every: int | None = None,
                layers: Iterable[int] | None = None) -> torch.nn.Module:
    """A copy of `model` with only some of its layers: every `every`-th counted back from the last
    (6 layers, every=2: 1, 3, 5; the output layer is always kept, as TinyBERT's uniform mapping),
    or the `layers` given (indices, in order). The kept layers keep their weights (DistilBERT's
    initialisation). A `config.num_hidden_layers` (transformers) follows."""
    if (every is None) == (layers is None):
        raise ValueError("give one of every= or layers=")
    path, stack = _layer_stack(model)
    count = len(stack)
    if every is not None:
        if not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        keep = list(range(count - 1, -1, -every))[::-1]
    else:
        keep = [int(i) for i in layers]
        if not keep:
            raise ValueError("layers is empty: a student needs at least one layer")
        if any(not 0 <= i < count for i in keep) or keep != sorted(set(keep)):
            raise ValueError(f"layers {keep}: the teacher has layers 0..{count - 1}; give increasing indices, "
                             "each once")
    student = copy.deepcopy(model)
    parent_path, _, name = path.rpartition(".")
    parent = student.get_submodule(parent_path) if parent_path else student
    setattr(parent, name, torch.nn.ModuleList(getattr(parent, name)[i] for i in keep))
    config = getattr(student, "config", None)
    if config is not None and hasattr(config, "num_hidden_layers"):
        config.num_hidden_layers = len(keep)
    return student


def _minilm(model):
    from ..models.minilm import MiniLM

    if not isinstance(model, MiniLM):
        raise TypeError(f"this student builder takes an intinfer.models.MiniLM, got {type(model).__name__}")
    return MiniLM


def _config(model) -> dict:
    heads = {layer.heads for layer in model.layers}
    if len(heads) != 1:
        raise ValueError(f"the layers have {sorted(heads)} heads: narrow or shrink a model before pruning its heads")
    units = {layer.ffn_in.out_features for layer in model.layers}
    if len(units) != 1:
        raise ValueError(f"the layers have {sorted(units)} feed-forward units: narrow or shrink a model before "
                         "pruning its units")
    return dict(model.embedding_config(), hidden=model.hidden, layers=len(model.layers), heads=heads.pop(),
                intermediate=units.pop())


@torch.no_grad()
def narrow(model, hidden: int, intermediate: int | None = None):
    """A MiniLM `model` narrowed to `hidden` (a multiple of its head size, which stays: the heads
    are fewer) and `intermediate` feed-forward units (default: the teacher's ratio), its weights the
    teacher's first `hidden` residual dimensions, first heads and first units: a start that
    distillation (with a learned projection for hidden-state losses) moves from."""
    cls = _minilm(model)
    config = _config(model)
    head_dim = config["hidden"] // config["heads"]
    if not isinstance(hidden, int) or not 0 < hidden < config["hidden"]:
        raise ValueError(f"hidden {hidden!r}: a student narrower than the teacher's {config['hidden']} is "
                         "0 < hidden < that")
    if hidden % head_dim:
        raise ValueError(f"hidden {hidden} is not a multiple of the head size {head_dim}")
    if intermediate is None:
        intermediate = config["intermediate"] * hidden // config["hidden"]
    if not isinstance(intermediate, int) or not 0 < intermediate <= config["intermediate"]:
        raise ValueError(f"intermediate {intermediate!r}: 0 < intermediate <= the teacher's {config['intermediate']}")
    student = cls(**{**config, "hidden": hidden, "heads": hidden // head_dim, "intermediate": intermediate})
    student.take_embeddings(model)
    h, f = slice(0, hidden), slice(0, intermediate)
    for theirs, ours in zip(model.layers, student.layers):
        for name in ("query", "key", "value"):
            getattr(ours, name).weight.copy_(getattr(theirs, name).weight[h, h])
            getattr(ours, name).bias.copy_(getattr(theirs, name).bias[h])
        ours.attn_out.weight.copy_(theirs.attn_out.weight[h, h])
        ours.attn_out.bias.copy_(theirs.attn_out.bias[h])
        ours.ffn_in.weight.copy_(theirs.ffn_in.weight[f, h])
        ours.ffn_in.bias.copy_(theirs.ffn_in.bias[f])
        ours.ffn_out.weight.copy_(theirs.ffn_out.weight[h, f])
        ours.ffn_out.bias.copy_(theirs.ffn_out.bias[h])
        for norm in ("attn_norm", "ffn_norm"):
            getattr(ours, norm).load_state_dict({k: v[h] for k, v in getattr(theirs, norm).state_dict().items()})
    student.tokenizer = model.tokenizer
    return student.train(model.training)


@dataclass
class VocabularyReport:
    """What shrink_vocabulary kept; of the held-out texts' tokens (as the teacher tokenizes them),
    the share the student's vocabulary lacks (those words are split into other pieces, or become
    unknown), and the share of unknown tokens with the teacher's vocabulary and with the student's."""
    teacher_tokens: int
    student_tokens: int
    held_out_tokens: int
    dropped_rate: float
    teacher_unknown_rate: float
    student_unknown_rate: float

    def __str__(self) -> str:
        return (f"vocabulary {self.teacher_tokens} -> {self.student_tokens} tokens; of {self.held_out_tokens} held-out "
                f"tokens {self.dropped_rate:.4%} dropped (split otherwise or unknown), unknown "
                f"{self.teacher_unknown_rate:.4%} -> {self.student_unknown_rate:.4%}")


class _WordPieceVocabulary:
    """intinfer.models.WordPieceTokenizer, as shrink_vocabulary sees a tokenizer."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.unk_id = tokenizer.unk_id
        self.size = len(tokenizer.id_to_token)
        self.specials = {tokenizer.vocab[t] for t in tokenizer.SPECIAL_TOKENS if t in tokenizer.vocab}

    def ids(self, text: str) -> list:
        return self.tokenizer.tokenize_ids(text)

    def shrunk(self, keep: list):
        t = self.tokenizer
        return type(t)([t.id_to_token[i] for i in keep], lowercase=t.lowercase, max_length=t.max_length,
                       max_input_chars_per_word=t.max_input_chars_per_word)


class _TokenizersVocabulary:
    """A `tokenizers.Tokenizer` with a WordPiece model (transformers' BERT-style and MPNet
    tokenizers), as shrink_vocabulary sees a tokenizer: the shrunk one is the same pipeline
    (normalizer, pre-tokenizer, padding, truncation) with the kept tokens renumbered in their
    order, its special tokens' ids in the post-processor and padding renumbered with them."""

    def __init__(self, tokenizer):
        import json

        self.tokenizer = tokenizer
        self.spec = json.loads(tokenizer.to_str())
        if self.spec["model"].get("type") != "WordPiece":
            raise ValueError(f"shrink_vocabulary reads WordPiece vocabularies; this tokenizer's model is "
                             f"{self.spec['model'].get('type')}")
        self.counter = type(tokenizer).from_str(tokenizer.to_str())
        self.counter.no_truncation()
        self.counter.no_padding()
        self.unk_id = tokenizer.token_to_id(self.spec["model"]["unk_token"])
        self.size = tokenizer.get_vocab_size()
        post = self.spec.get("post_processor") or {}
        self.specials = ({t["id"] for t in self.spec.get("added_tokens", [])} | {self.unk_id}
                         | {post[k][1] for k in ("sep", "cls") if k in post}
                         | {i for special in post.get("special_tokens", {}).values() for i in special["ids"]}
                         | ({self.spec["padding"]["pad_id"]} if self.spec.get("padding") else set()))

    def ids(self, text: str) -> list:
        return self.counter.encode(text, add_special_tokens=False).ids

    def shrunk(self, keep: list):
        import json

        new = {old: i for i, old in enumerate(keep)}
        spec = copy.deepcopy(self.spec)
        spec["model"]["vocab"] = {t: new[i] for t, i in spec["model"]["vocab"].items() if i in new}
        for t in spec.get("added_tokens", []):
            t["id"] = new[t["id"]]
        post = spec.get("post_processor") or {}
        for key in ("sep", "cls"):
            if key in post:
                post[key][1] = new[post[key][1]]
        for special in post.get("special_tokens", {}).values():
            special["ids"] = [new[i] for i in special["ids"]]
        if spec.get("padding"):
            spec["padding"]["pad_id"] = new[spec["padding"]["pad_id"]]
        return type(self.tokenizer).from_str(json.dumps(spec))


def _vocabulary(model):
    from ..models.minilm import WordPieceTokenizer

    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        raise ValueError("the model has no tokenizer: build it with MiniLM.from_pretrained(), or set .tokenizer "
                         "(a transformers model: model.tokenizer = its tokenizers.Tokenizer)")
    if isinstance(tokenizer, WordPieceTokenizer):
        return _WordPieceVocabulary(tokenizer)
    if type(tokenizer).__module__.startswith("tokenizers"):
        return _TokenizersVocabulary(tokenizer)
    raise TypeError(f"shrink_vocabulary reads intinfer's WordPieceTokenizer or a tokenizers.Tokenizer, "
                    f"got {type(tokenizer).__name__}")


def _word_embeddings(model) -> tuple:
    """(the module holding the word-embedding table, the name of it there): intinfer's MiniLM, or
    a transformers model's input embeddings; either may be a FactorizedEmbedding."""
    if hasattr(model, "get_input_embeddings"):
        target = model.get_input_embeddings()
        for path, module in model.named_modules():
            if module is target:
                parent, _, name = path.rpartition(".")
                return model.get_submodule(parent) if parent else model, name
    if isinstance(getattr(model, "word_embeddings", None), (torch.nn.Embedding, FactorizedEmbedding)):
        return model, "word_embeddings"
    raise TypeError(f"{type(model).__name__} has no word embeddings shrink_vocabulary knows (intinfer's MiniLM, "
                    "or a transformers model)")


def _rate(ids: list, hit) -> float:
    return sum(1 for i in ids if hit(i)) / len(ids) if ids else 0.0


@torch.no_grad()
def shrink_vocabulary(model, corpus, held_out=None, max_dropped: float = 0.005):
    """A copy of `model` whose vocabulary keeps only the special tokens and the tokens its
    tokenizer (`model.tokenizer`: intinfer's WordPieceTokenizer, or a WordPiece
    tokenizers.Tokenizer attached to a transformers model) gives for the `corpus` texts, in their
    original order: the word-embedding rows shrink with it (a transformers config's vocab_size
    follows) and the copy gets a tokenizer of the kept tokens, which tokenizes the corpus exactly
    as before. A word of `held_out` (default: the corpus) that needs a dropped token is split into
    other pieces or becomes unknown, so the student reads it otherwise than the teacher: when more
    than `max_dropped` of the held-out tokens are dropped, a ValueError says how many, with the
    unknown-token rates. Returns (student, VocabularyReport)."""
    vocabulary = _vocabulary(model)
    _word_embeddings(model)
    corpus = [corpus] if isinstance(corpus, str) else list(corpus)
    if not any(t.strip() for t in corpus):
        raise ValueError("the corpus is empty: a vocabulary is shrunk to the tokens a corpus uses")
    keep = sorted({i for t in corpus for i in vocabulary.ids(t)} | vocabulary.specials)
    shrunk = vocabulary.shrunk(keep)
    held_out = corpus if held_out is None else ([held_out] if isinstance(held_out, str) else list(held_out))
    teacher_ids = [i for t in held_out for i in vocabulary.ids(t)]
    student = type(vocabulary)(shrunk)
    student_ids = [i for t in held_out for i in student.ids(t)]
    kept = set(keep)
    report = VocabularyReport(vocabulary.size, len(keep), len(teacher_ids), _rate(teacher_ids, lambda i: i not in kept),
                              _rate(teacher_ids, lambda i: i == vocabulary.unk_id),
                              _rate(student_ids, lambda i: i == student.unk_id))
    if report.dropped_rate > max_dropped:
        raise ValueError(f"the shrunk vocabulary drops tokens the held-out text needs: {report} (allowed: "
                         f"{max_dropped:.4%} dropped); shrink to a larger corpus, closer to the held-out text")
    student = copy.deepcopy(model)
    owner, name = _word_embeddings(student)
    embedding = getattr(owner, name)
    table = embedding.table if isinstance(embedding, FactorizedEmbedding) else embedding
    new = {old: i for i, old in enumerate(keep)}
    padding = new.get(table.padding_idx) if table.padding_idx is not None else None
    smaller = torch.nn.Embedding(len(keep), table.embedding_dim, padding_idx=padding)
    smaller.weight.copy_(table.weight[torch.tensor(keep)])
    if isinstance(embedding, FactorizedEmbedding):
        embedding.table = smaller
    else:
        setattr(owner, name, smaller)
    config = getattr(student, "config", None)
    if config is not None and hasattr(config, "vocab_size"):
        config.vocab_size = len(keep)
    student.tokenizer = shrunk
    return student, report


class FactorizedEmbedding(torch.nn.Module):
    """An embedding table [V, H] as the product of [V, rank] and [rank, H] (ALBERT, Lan et al.
    2020): a lookup into the small table, then a linear map without bias (GATHER then
    FULLY_CONNECTED in the engine)."""

    def __init__(self, num_embeddings: int, rank: int, embedding_dim: int):
        super().__init__()
        self.table = torch.nn.Embedding(num_embeddings, rank)
        self.proj = torch.nn.Linear(rank, embedding_dim, bias=False)

    @property
    def num_embeddings(self) -> int:
        return self.table.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.proj.out_features

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(self.table(ids))


@torch.no_grad()
def factorize_embeddings(model: torch.nn.Module, rank: int, name: str | None = None) -> torch.nn.Module:
    """A copy of `model` whose embedding `name` (default: its word embeddings, intinfer's MiniLM's
    or a transformers model's input embeddings, else its largest torch.nn.Embedding) is a
    FactorizedEmbedding of `rank`, initialised by the truncated SVD of the table (the best rank-r
    approximation in the least-squares sense)."""
    embeddings = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Embedding)}
    if not embeddings:
        raise ValueError(f"{type(model).__name__} has no torch.nn.Embedding to factorize")
    if name is None:
        try:
            owner, attr = _word_embeddings(model)
            name = next(n for n, m in model.named_modules() if m is getattr(owner, attr))
        except TypeError:
            name = max(embeddings, key=lambda n: embeddings[n].weight.numel())
    if name not in embeddings:
        raise ValueError(f"no torch.nn.Embedding '{name}'; the model's are {sorted(embeddings)}")
    weight = embeddings[name].weight
    vocab, dim = weight.shape
    if not isinstance(rank, int) or not 0 < rank < vocab * dim / (vocab + dim):
        raise ValueError(f"rank {rank!r}: a factorization of the {vocab} x {dim} table that is smaller than it has "
                         f"0 < rank < {vocab * dim / (vocab + dim):.1f}")
    u, s, vh = torch.linalg.svd(weight.double(), full_matrices=False)
    factorized = FactorizedEmbedding(vocab, rank, dim)
    factorized.table.weight.copy_((u[:, :rank] * s[:rank]).float())
    factorized.proj.weight.copy_(vh[:rank].T.float())
    student = copy.deepcopy(model)
    parent_path, _, attr = name.rpartition(".")
    setattr(student.get_submodule(parent_path) if parent_path else student, attr, factorized)
    return student
