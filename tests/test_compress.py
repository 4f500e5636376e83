"""intinfer.compress (docs/compression.md) end to end on tiny teachers, the quick form of the
compression study: every stage and every order of distillation and pruning, quantization last
(post-training and QAT), each stage's .iif written and run by the engine; the final file equal to
what the QAT model's eval mode computes, bit for bit; the records' bytes those of the files; the
refusals by name."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import intinfer  # noqa: E402
from intinfer import compress as C  # noqa: E402
from intinfer import distill as D  # noqa: E402
from intinfer.models.minilm import MiniLM, WordPieceTokenizer  # noqa: E402

WORDS = ("the a cat dog bird sat ran flew on under over mat tree house sun moon rose fell big small red blue "
         "quick slow happy sad old new").split()


def _texts(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 9))) + "." for _ in range(n)]


def _teacher():
    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    model = MiniLM(vocab_size=len(vocab), hidden=32, layers=4, heads=4, intermediate=64, max_positions=16).eval()
    model.tokenizer = WordPieceTokenizer(vocab, max_length=16)
    return model


def _task(**options):
    a, b = _texts(12, 3), _texts(12, 4)
    human = np.random.default_rng(5).uniform(0, 5, 12)
    return C.EncoderTask(_texts(48, 1), _texts(16, 2), pairs=(a, b, human), batch_size=8, max_seq=16, runs=3,
                         **options)


def _student(model):
    return D.shrink_vocabulary(D.take_layers(model, every=2), _texts(48, 1), held_out=_texts(16, 2),
                               max_dropped=0.0)[0]


def _zero_share(model, prefix: str) -> float:
    """The share of exact zeros in the weights of the Linear modules under `prefix`."""
    weights = [m.weight for n, m in model.named_modules() if isinstance(m, nn.Linear) and n.startswith(prefix)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def _assert_engine_is_the_qat_model(result, batches) -> None:
    engine = intinfer.load(result.quantized.to_bytes())
    for xs in batches:
        with torch.no_grad():
            want = result.qat_model(*xs).numpy()
        np.testing.assert_array_equal(engine.run([x.numpy() for x in xs]), want)


ORDERS = {
    "D": [C.Distill(_student, epochs=1, lr=1e-3)],
    "P": [C.Prune(0.5, epochs=1, lr=1e-3)],
    "Q": [C.Quantize(qat=True, lr=1e-4)],
    "DPQ": [C.Distill(_student, epochs=1, lr=1e-3), C.Prune(0.5, epochs=2, rounds=2, lr=1e-3),
            C.Quantize(qat=True, lr=1e-4)],
    "PDQ": [C.Prune(0.5, epochs=1, lr=1e-3), C.Distill(_student, epochs=1, lr=1e-3),
            C.Quantize(bits=4, qat=False)],
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_every_order_runs_end_to_end_on_the_engine(order, tmp_path):
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    result = C.compress(teacher, _task(), ORDERS[order], progress=False)
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())  # the teacher is left alone
    assert [r.stage for r in result.records] == ["teacher (fp32, torch)", *(s.name for s in ORDERS[order])]
    teacher_bytes = 4 * D.parameter_count(teacher)
    assert result.records[0].bytes == teacher_bytes
    for r in result.records[1:]:
        assert r.ratio == pytest.approx(teacher_bytes / r.bytes)
        assert set(r.quality) == {"cosine", "spearman_teacher", "spearman_human"}
        assert all(np.isfinite(v) for v in r.quality.values()) and r.latency_ms > 0
    assert result.records[-1].bytes == len(result.quantized.to_bytes())
    result.save(tmp_path / "final.iif")
    assert (tmp_path / "final.iif").read_bytes() == result.quantized.to_bytes()
    if "D" in order:  # the student the builder made, trained
        assert D.parameter_count(result.model) == D.parameter_count(_student(teacher)) < D.parameter_count(teacher)
    if "P" in order:  # the zeros outlive the stages after pruning
        assert _zero_share(result.model, "layers.") == pytest.approx(0.5, abs=0.01)
    assert result.table().count("\n") == len(result.records) + 1 and "teacher (fp32, torch)" in result.table()


def test_the_qat_file_is_what_the_qat_model_computes():
    task = _task()
    result = C.compress(_teacher(), task, ORDERS["DPQ"], progress=False, measure=False)
    assert len(result.records) == 2  # the teacher and the final file
    _assert_engine_is_the_qat_model(result, task.batches(result.model)[:3])


def test_a_model_of_another_width_is_judged_by_the_pairs_alone():
    """A published student narrower than the teacher (all-MiniLM-L6-v2 against all-mpnet-base-v2
    in the study): no cosine across widths; the pairs' Spearman correlations as numpy computes
    them from the two models' own similarities."""
    from scipy.stats import spearmanr

    teacher, task = _teacher(), _task()
    task.prepare(teacher)
    narrow = D.narrow(teacher, 16)
    quality, _ = task.evaluate_float(narrow)
    assert "cosine" not in quality and "cosine" in task.evaluate_float(teacher)[0]

    def sims(model):
        a, b = (model.embed(list(s)) for s in task.pairs[:2])
        return (a * b).sum(1)

    want = sims(narrow)
    assert quality["spearman_teacher"] == pytest.approx(spearmanr(want, sims(teacher)).statistic, abs=1e-6)
    assert quality["spearman_human"] == pytest.approx(spearmanr(want, task.pairs[2]).statistic, abs=1e-6)


def test_a_transformers_teacher_through_every_stage():
    """MPNet (relative position bias) with its tokenizers.Tokenizer: a 2-layer student with a
    shrunk, factorized vocabulary, pruned and QAT-quantized; the engine computes what the QAT
    model's eval mode computes."""
    from test_distill import HF_WORDS, tiny_mpnet

    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(HF_WORDS[:-3], 6)) for _ in range(40)]
    task = C.EncoderTask(texts[:32], texts[32:], batch_size=8, max_seq=16, runs=2)
    teacher = tiny_mpnet()

    def student(model):
        return D.factorize_embeddings(D.shrink_vocabulary(D.take_layers(model, every=2), texts[:32])[0], 4)

    result = C.compress(teacher, task, [C.Distill(student, epochs=2, lr=1e-3), C.Prune(0.5, epochs=1, lr=1e-3),
                                        C.Quantize(qat=True, lr=1e-4)], progress=False)
    assert [r.stage for r in result.records] == ["teacher (fp32, torch)", "distill", "prune", "quantize"]
    assert result.model.config.num_hidden_layers == 2 and result.model.config.vocab_size < teacher.config.vocab_size
    assert result.records[-1].quality["cosine"] > 0.5
    assert _zero_share(result.model, "encoder.layer.") == pytest.approx(0.5, abs=0.01)
    _assert_engine_is_the_qat_model(result, task.batches(result.model)[:2])


def test_a_classifier_with_labels():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 12, generator=gen)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(12, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 3))
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-2)
    for _ in range(200):
        loss = nn.functional.cross_entropy(teacher(x[:192]), y[:192])
        opt.zero_grad()
        loss.backward()
        opt.step()

    def narrower(model):
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))

    task = C.ClassifierTask(x[:192], x[192:], y[:192], y[192:].numpy(), runs=3)
    result = C.compress(teacher, task, [C.Distill(narrower, epochs=60, lr=1e-2), C.Prune(0.5, block=4, epochs=20,
                                                                                          lr=1e-3),
                                        C.Quantize(qat=True, epochs=5, lr=1e-4)], progress=False)
    teacher_acc = result.records[0].quality["accuracy"]
    final = result.records[-1].quality
    assert final["accuracy"] > teacher_acc - 0.15 and final["agreement"] > 0.8
    assert result.records[-1].bytes <= result.records[1].bytes < result.records[0].bytes / 4


def test_bad_orders_and_inputs_are_refused_by_name():
    teacher, task = _teacher(), _task()
    with pytest.raises(ValueError, match="prunes after 2-bit quantization"):
        C.compress(teacher, task, [C.Quantize(bits=2), C.Prune(0.5)], progress=False)
    with pytest.raises(ValueError, match=r"stage 1 \(Distill\) comes after quantization \(stage 0\)"):
        C.compress(teacher, task, [C.Quantize(), C.Distill(_student)], progress=False)
    with pytest.raises(ValueError, match="no stages"):
        C.compress(teacher, task, [], progress=False)
    with pytest.raises(TypeError, match="stage 0 is a str"):
        C.compress(teacher, task, ["distill"], progress=False)
    with pytest.raises(ValueError, match="sparsity must be in"):
        C.compress(teacher, task, [C.Prune(1.0)], progress=False)
    with pytest.raises(ValueError, match="rounds must be"):
        C.compress(teacher, task, [C.Prune(0.5, epochs=1, rounds=3)], progress=False)
    def wider(model):
        student = MiniLM(vocab_size=40, hidden=64, layers=4, heads=4, intermediate=128, max_positions=16)
        student.tokenizer = model.tokenizer
        return student

    with pytest.raises(ValueError, match="more than the teacher"):
        C.compress(teacher, task, [C.Distill(wider)], progress=False)
    with pytest.raises(ValueError, match="training corpus is empty"):
        C.EncoderTask([], ["a"])
    with pytest.raises(ValueError, match="held-out texts are empty"):
        C.EncoderTask(["a"], [" "])
    with pytest.raises(TypeError, match="EncoderTask takes an intinfer.models.MiniLM"):
        C.compress(nn.Linear(2, 2), task, [C.Quantize()], progress=False)
