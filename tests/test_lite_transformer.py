"""intinfer.models.LiteTransformer (Lite Transformer's LSRA encoder) in float: padded tokens leave
the real tokens' outputs alone, the convolution reads the window its padding says (causal: no
later token), the lightweight kernels are softmax-normalized and applied as a loop says, bad
arguments are refused by name, students start from the teacher's embeddings, and a student
learns from a tiny MiniLM teacher with intinfer.distill. Then from a .iif: the engine tracks the
float encoder at any batch and length, equals the QAT eval model bit for bit, and its cost is the
hand count."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import intinfer  # noqa: E402
from intinfer import compress as C  # noqa: E402
from intinfer import distill as D  # noqa: E402
from intinfer import qat  # noqa: E402
from intinfer.models import LiteTransformer, MiniLM, PooledEncoder, WordPieceTokenizer, plain_student  # noqa: E402
from intinfer.models.lite_transformer import ConvBranch, LightweightConv  # noqa: E402

WORDS = "the a cat dog bird sat ran flew on under over mat tree house sun moon big small red blue".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]


def _texts(n: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 9))) + "." for _ in range(n)]


def _teacher(max_length: int = 16) -> MiniLM:
    torch.manual_seed(0)
    model = MiniLM(vocab_size=len(VOCAB), hidden=32, layers=4, heads=4, intermediate=64, max_positions=16).eval()
    model.tokenizer = WordPieceTokenizer(VOCAB, max_length=max_length)
    return model


def _lite(padding: str = "centred", kernel_size: int = 5, seed: int = 0) -> LiteTransformer:
    torch.manual_seed(seed)
    return LiteTransformer(vocab_size=50, hidden=32, layers=2, heads=2, conv_heads=4, kernel_size=kernel_size,
                           intermediate=48, max_positions=16, padding=padding).eval()


@pytest.mark.parametrize("padding, kernel_size", [("centred", 5), ("causal", 4)])
def test_padded_tokens_do_not_change_the_real_tokens(padding, kernel_size):
    model = _lite(padding, kernel_size)
    gen = torch.Generator().manual_seed(1)
    lengths = [4, 9, 12]
    ids = torch.randint(1, 50, (len(lengths), max(lengths)), generator=gen)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    with torch.no_grad():
        batch = model(ids, mask, torch.zeros_like(ids))
        for i, n in enumerate(lengths):
            alone = model(ids[i:i + 1, :n])
            torch.testing.assert_close(batch[i:i + 1, :n], alone, rtol=1e-5, atol=1e-5)
        # other ids on the padded tokens change nothing either
        other = torch.where(mask.bool(), ids, torch.randint(1, 50, ids.shape, generator=gen))
        torch.testing.assert_close(model(other, mask)[mask.bool()], batch[mask.bool()], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding, kernel_size", [("causal", 4), ("causal", 1), ("centred", 5)])
def test_the_convolution_branch_reads_its_window(padding, kernel_size):
    torch.manual_seed(2)
    branch = ConvBranch(8, 2, kernel_size, padding).eval()
    seq = 10
    x = torch.randn(seq, 8, dtype=torch.float64)
    ones = torch.ones(1, seq, dtype=torch.long)
    jacobian = torch.autograd.functional.jacobian(lambda v: branch.double()(v[None], ones)[0], x)  # [S, C, S, C]
    reads = jacobian.abs().sum((1, 3)) > 0  # reads[i, j]: output token i depends on input token j
    i, j = np.indices((seq, seq))
    if padding == "causal":
        want = (j <= i) & (j > i - kernel_size)  # never a later token
    else:
        want = np.abs(i - j) <= kernel_size // 2
    np.testing.assert_array_equal(reads.numpy(), want)


def test_the_kernels_are_softmax_normalized_and_shared_by_groups_of_channels():
    torch.manual_seed(3)
    conv = LightweightConv(channels=6, heads=3, kernel_size=5)
    kernel = conv.kernel()
    assert kernel.shape == (3, 5)
    torch.testing.assert_close(kernel.sum(-1), torch.ones(3))
    assert bool((kernel > 0).all())
    y = torch.randn(2, 6, 7)
    padded = torch.nn.functional.pad(y, (2, 2)).detach().numpy()
    k = kernel.detach().numpy()
    want = np.zeros((2, 6, 7), dtype=np.float64)
    for c in range(6):
        for t in range(7):
            want[:, c, t] = sum(k[c // 2, tap] * padded[:, c, t + tap] for tap in range(5))
    np.testing.assert_allclose(conv(y).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    # a scale of the raw weights' logits moves the kernel, never its sum
    with torch.no_grad():
        conv.weight.mul_(7.0)
    torch.testing.assert_close(conv.kernel().sum(-1), torch.ones(3))


@pytest.mark.parametrize("options, message", [
    (dict(hidden=33, heads=1, conv_heads=1), "hidden 33 is odd"),
    (dict(hidden=32, heads=3), "heads 3 does not divide the attention half of hidden 32 \\(16 channels\\)"),
    (dict(hidden=32, heads=4, conv_heads=5), "conv_heads 5 does not divide the convolution half"),
    (dict(heads=0), "heads must be an integer >= 1, got 0"),
    (dict(kernel_size=0), "kernel_size must be an integer >= 1, got 0"),
    (dict(kernel_size=4), "kernel_size 4 is even: centred padding needs an odd kernel"),
    (dict(padding="same"), "padding must be one of \\('centred', 'causal'\\), got 'same'"),
    (dict(intermediate=0), "intermediate must be an integer >= 1"),
])
def test_bad_arguments_are_refused_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        LiteTransformer(vocab_size=50, **options)


def test_bad_students_are_refused_by_name():
    LiteTransformer(vocab_size=50, kernel_size=4, padding="causal")  # an even kernel is fine when causal
    with pytest.raises(ValueError, match="heads 3 does not divide the 8 channels"):
        LightweightConv(8, 3, 3)
    with pytest.raises(ValueError, match="hidden 64 is wider than the teacher's 32"):
        LiteTransformer.from_teacher(_teacher(), hidden=64)
    with pytest.raises(ValueError, match="max_positions 32 is more than the teacher's 16"):
        plain_student(_teacher(), hidden=16, layers=1, heads=2, intermediate=32, max_positions=32)
    with pytest.raises(TypeError, match="the teacher must be an intinfer.models.MiniLM"):
        LiteTransformer.from_teacher(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="no pretrained Lite Transformer weights"):
        LiteTransformer.from_pretrained()
    factorized = D.factorize_embeddings(_teacher(), 4)
    with pytest.raises(TypeError, match="before factorizing"):
        LiteTransformer.from_teacher(factorized, hidden=16, heads=2, conv_heads=2)


@pytest.mark.parametrize("build", ["lite", "plain"])
def test_students_start_from_the_teachers_embeddings(build):
    teacher = _teacher(max_length=16)
    torch.manual_seed(4)
    if build == "lite":
        student = LiteTransformer.from_teacher(teacher, hidden=16, layers=2, heads=2, conv_heads=2, kernel_size=3,
                                               intermediate=32, max_positions=8)
        assert isinstance(student, LiteTransformer) and len(student.layers) == 2
    else:
        student = plain_student(teacher, hidden=16, layers=2, heads=2, intermediate=32, max_positions=8)
        assert type(student) is MiniLM and student.layers[0].heads == 2
    assert not student.training
    for name in ("word_embeddings", "token_type_embeddings"):
        assert torch.equal(getattr(student, name).weight, getattr(teacher, name).weight[:, :16])
    assert torch.equal(student.position_embeddings.weight, teacher.position_embeddings.weight[:8, :16])
    for name, value in student.embeddings_norm.state_dict().items():
        assert torch.equal(value, teacher.embeddings_norm.state_dict()[name][:16])
    assert student.embeddings_norm.eps == teacher.embeddings_norm.eps
    # the teacher's tokenizer, cut at the student's 8 positions; the teacher's own is left at 16
    assert student.tokenizer.vocab is teacher.tokenizer.vocab and student.tokenizer.max_length == 8
    assert teacher.tokenizer.max_length == 16
    assert student.embed(_texts(3, 0)).shape == (3, 16)
    full = LiteTransformer.from_teacher(teacher, hidden=32, heads=2, conv_heads=2, kernel_size=3, layers=1)
    assert full.tokenizer is teacher.tokenizer and full.max_positions == 16


@pytest.mark.parametrize("build", ["lite", "plain"])
def test_a_student_learns_from_a_tiny_teacher(build):
    teacher = _teacher()
    torch.manual_seed(5)
    if build == "lite":
        student = LiteTransformer.from_teacher(teacher, hidden=32, layers=2, heads=2, conv_heads=4, kernel_size=3,
                                               intermediate=32)
    else:
        student = plain_student(teacher, hidden=32, layers=1, heads=4, intermediate=64)
    assert D.parameter_count(student) < D.parameter_count(teacher)
    data = []
    for i in range(0, 32, 8):
        enc = teacher.tokenizer.encode(_texts(32, 6)[i:i + 8])
        data.append(tuple(torch.from_numpy(enc[k]).long() for k in ("input_ids", "attention_mask", "token_type_ids")))
    history = D.distill(PooledEncoder(student), PooledEncoder(teacher), data, "cosine", epochs=8, lr=3e-3,
                        progress=False)
    assert history.losses[-1] < 0.5 * history.losses[0]


def test_the_compression_pipeline_takes_a_shrunk_lite_student():
    teacher = _teacher()
    corpus = _texts(4, 1)
    student, _ = D.shrink_vocabulary(LiteTransformer.from_teacher(teacher, hidden=32, layers=1, heads=2, conv_heads=2,
                                                                  kernel_size=3, intermediate=32), corpus)
    assert isinstance(student, LiteTransformer) and student.word_embeddings.num_embeddings < len(VOCAB)
    a, b = _texts(6, 3), _texts(6, 4)
    task = C.EncoderTask(corpus, _texts(16, 2), pairs=(a, b, np.arange(6.0)), batch_size=8, max_seq=16,
                         runs=1)
    task.prepare(teacher)
    assert isinstance(task.wrap(student), PooledEncoder)
    assert all(len(xs) == 3 for xs in task.batches(student))
    assert task.prunable(student)[0] == "bert.layers.0.query"
    quality, latency = task.evaluate_float(student)
    assert set(quality) == {"cosine", "spearman_teacher", "spearman_human"} and latency > 0


# -- from a .iif --------------------------------------------------------------------------------

SHAPES = [(3, 11), (1, 16), (2, 5)]
DYNAMIC = ({0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", min=5, max=16)},) * 3


def _tokens(n: int, s: int, gen) -> tuple:
    ids = torch.randint(5, 50, (n, s), generator=gen)
    lengths = torch.randint(1, s + 1, (n,), generator=gen)
    lengths[0] = s
    mask = (torch.arange(s)[None] < lengths[:, None]).long()
    return ids * mask, mask, torch.zeros_like(ids)


@pytest.fixture(scope="module", params=["centred", "causal"])
def exported(request):
    model = PooledEncoder(_lite(request.param, 5 if request.param == "centred" else 4)).eval()
    gen = torch.Generator().manual_seed(5)
    calibration = [_tokens(4, 5 + i % 12, gen) for i in range(12)]
    return model, intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=DYNAMIC)


def test_the_engine_tracks_the_float_encoder_at_any_batch_and_length(exported):
    model, q = exported
    engine = q.load(num_threads=2)
    gen = torch.Generator().manual_seed(6)
    for n, s in SHAPES:
        xs = _tokens(n, s, gen)
        with torch.no_grad():
            want = model(*xs).numpy().astype(np.float64)
        got = engine.run([x.numpy() for x in xs]).astype(np.float64)
        cosine = (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
        assert cosine.mean() >= 0.99 and cosine.min() >= 0.97, (n, s, cosine)


def test_the_lsra_blocks_become_the_sequence_ops(exported):
    """Per layer: APPLY_MASK, a 1 x K depthwise CONV2D on [B, S, 16] with no TRANSPOSE on either
    side, the branches joined by CONCAT."""
    model, q = exported
    k = model.bert.layers[0].conv.conv.kernel_size
    ops = q.builder.ops
    convs = [op for op in ops if op.type == "CONV2D"]
    assert [op.inputs[1].data.shape for op in convs] == [(16, 1, k, 1)] * 2
    producers = {id(t): op.type for op in ops for t in op.outputs}
    assert [producers[id(op.inputs[0])] for op in convs] == ["APPLY_MASK"] * 2
    around = {id(t) for op in convs for t in (op.inputs[0], op.outputs[0])}
    assert not any(op.type == "TRANSPOSE" and id(op.inputs[0]) in around for op in ops)
    assert [op.type for op in ops].count("CONCAT") == 2


def test_the_cost_counts_the_convolution_branch_by_hand(exported):
    """At S tokens a layer's convolution is S * 16 channels * K taps MACs, its GLU input linear
    S * 16 * 32, the attention half's q, k, v S * 3 * 16 * 16, scores and context 2 * S^2 * 16."""
    model, q = exported
    k = model.bert.layers[0].conv.conv.kernel_size
    m = intinfer.load(q.to_bytes())
    s = 8
    cost = m.cost({i.name: [1, s] for i in m.inputs})
    convs = [r for r in cost.layers if r.op == "CONV2D"]
    assert [r.macs for r in convs] == [s * 16 * k] * 2
    per_layer = s * (3 * 16 * 16 + 16 * 32 + 16 * 16 + 32 * 32 + 2 * 32 * 48) + s * 16 * k
    assert cost.totals["activation_macs"] == 2 * 2 * s * s * 16
    assert cost.totals["macs"] - cost.totals["activation_macs"] == 2 * per_layer


@pytest.mark.parametrize("padding", ["centred", "causal"])
def test_the_engine_equals_the_qat_eval_model_bit_for_bit(padding):
    from test_qat import engine_and_oracle

    model = PooledEncoder(_lite(padding, 3)).eval()
    gen = torch.Generator().manual_seed(7)
    qm = qat.prepare(model, _tokens(2, 8, gen), dynamic_shapes=DYNAMIC).train()
    with torch.no_grad():
        for i in range(6):
            qm(*_tokens(4, 5 + i % 12, gen))
    qm.eval()
    for n, s in SHAPES:
        xs = _tokens(n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=1 + n % 2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)
