"""Hugging Face transformers encoders as they are (small random-weight configs built from the
config classes; nothing downloaded), through intinfer.quantize and intinfer.qat: the exporter's
float graph equals torch's output, the engine runs the export with dynamic batch and sequence
length close to torch, and the engine equals intinfer.qat's eval model (and tests/oracle.py) bit
for bit. Both attention implementations: SDPA (the default) and eager. Outputs per token are
compared at real tokens only: RoBERTa numbers its positions from the padding mask, which the
engine takes as PAD + 1 + i (the same at every real token of a right-padded batch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers", reason="installed by scripts/setup.sh")

import intinfer  # noqa: E402
from intinfer import qat  # noqa: E402
import oracle  # noqa: E402
from test_qat import engine_and_oracle  # noqa: E402

VOCAB = 60
MAX_SEQ = 16
SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


PAD = 1  # RoBERTa's padding token (and position offset); no other token of a batch is PAD


def bert(attn, head=None):
    config = transformers.BertConfig(vocab_size=VOCAB, max_position_embeddings=MAX_SEQ, attn_implementation=attn,
                                     num_labels=3, **SMALL)
    torch.manual_seed(0)
    cls = transformers.BertForSequenceClassification if head == "classifier" else transformers.BertModel
    return cls(config).eval()


def distilbert(attn):
    config = transformers.DistilBertConfig(vocab_size=VOCAB, max_position_embeddings=MAX_SEQ, dim=32, n_layers=2,
                                           n_heads=4, hidden_dim=64, attn_implementation=attn)
    torch.manual_seed(0)
    return transformers.DistilBertModel(config).eval()


def roberta(attn):
    # Position ids start at PAD + 1: the table has MAX_SEQ + PAD + 1 rows, as RoBERTa's 514.
    config = transformers.RobertaConfig(vocab_size=VOCAB, max_position_embeddings=MAX_SEQ + PAD + 1,
                                        pad_token_id=PAD, attn_implementation=attn, **SMALL)
    torch.manual_seed(0)
    return transformers.RobertaModel(config).eval()


def mpnet():
    # MPNet numbers positions as RoBERTa does; SDPA is refused by transformers for it, so eager.
    # Its relative position bias (32 buckets, a random [32, heads] table) is scaled up from the
    # initialization's 0.02, and the attention's value and output projections by 10, so that the
    # bias moves the output: without it the last hidden state's cosine with torch falls to 0.74.
    config = transformers.MPNetConfig(vocab_size=VOCAB, max_position_embeddings=MAX_SEQ + PAD + 1, pad_token_id=PAD,
                                      attn_implementation="eager", **SMALL)
    torch.manual_seed(0)
    model = transformers.MPNetModel(config).eval()
    with torch.no_grad():
        model.encoder.relative_attention_bias.weight.normal_(0, 2.0)
        for layer in model.encoder.layer:
            layer.attention.attn.v.weight.mul_(10.0)
            layer.attention.attn.o.weight.mul_(10.0)
    return model


def albert(attn):
    # ALBERT: factorized embeddings (16 wide, projected to 32), one layer's weights shared by both
    # layers, and gelu_new (0.5 x (1 + tanh(...)) written with pow, tanh and mul: one LUT).
    config = transformers.AlbertConfig(vocab_size=VOCAB, embedding_size=16, max_position_embeddings=MAX_SEQ,
                                       attn_implementation=attn, **SMALL)
    torch.manual_seed(0)
    return transformers.AlbertModel(config).eval()


class DefaultTypes(torch.nn.Module):
    """The last hidden state of a model called with ids and mask alone: its token types are the
    model's default all-zero buffer."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def call(model, input_ids, attention_mask, token_type_ids):
    if token_type_ids is None:
        return model(input_ids=input_ids, attention_mask=attention_mask)
    return model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


class MeanPooled(torch.nn.Module):
    """sentence-transformers' mean pooling over the attention mask of the last hidden state."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        h = call(self.encoder, input_ids, attention_mask, token_type_ids).last_hidden_state
        keep = attention_mask.unsqueeze(-1).to(h.dtype)
        return (h * keep).sum(1) / torch.clamp(keep.sum(1), min=1e-9)


class Output(torch.nn.Module):
    """One named output of a transformers model called with ids, mask (and token types)."""

    def __init__(self, model, name):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        return getattr(call(self.model, input_ids, attention_mask, token_type_ids), self.name)


def batch(model, n, s, gen):
    """Random ids (PAD at padding only), a right-padded mask (at least one token per row), and
    random token types when the model takes them."""
    ids = torch.randint(PAD + 1, VOCAB, (n, s), generator=gen)
    lengths = torch.randint(1, s + 1, (n,), generator=gen)
    lengths[0] = s
    mask = (torch.arange(s)[None, :] < lengths[:, None]).long()
    ids[mask == 0] = PAD
    types = torch.randint(0, 2, (n, s), generator=gen)
    return (ids, mask, types) if n_inputs(model) == 3 else (ids, mask)


def n_inputs(model) -> int:
    if isinstance(model, DefaultTypes):
        return 2
    inner = model.encoder if isinstance(model, MeanPooled) else model.model
    return 2 if isinstance(inner, (transformers.DistilBertModel, transformers.MPNetModel)) else 3


def dynamic(model):
    return ({0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=MAX_SEQ)},) * n_inputs(model)


def real_positions(y, mask):
    """The values at real (unpadded) tokens of a [B, S, ...] output; others pass whole."""
    return y[mask.bool()] if y.dim() >= 3 else y


def cosine(a, b):
    a, b = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


SHAPES = [(3, 11), (1, 16), (2, 5)]

MODELS = {
    "bert_sdpa_mean": lambda: MeanPooled(bert("sdpa")),
    "bert_eager_mean": lambda: MeanPooled(bert("eager")),
    "bert_sdpa_hidden": lambda: Output(bert("sdpa"), "last_hidden_state"),
    "bert_eager_hidden": lambda: Output(bert("eager"), "last_hidden_state"),
    "bert_sdpa_pooler": lambda: Output(bert("sdpa"), "pooler_output"),
    "bert_sdpa_classifier": lambda: Output(bert("sdpa", "classifier"), "logits"),
    "bert_eager_classifier": lambda: Output(bert("eager", "classifier"), "logits"),
    "distilbert_sdpa_mean": lambda: MeanPooled(distilbert("sdpa")),
    "distilbert_eager_hidden": lambda: Output(distilbert("eager"), "last_hidden_state"),
    "roberta_sdpa_mean": lambda: MeanPooled(roberta("sdpa")),
    "roberta_eager_hidden": lambda: Output(roberta("eager"), "last_hidden_state"),
    "roberta_sdpa_pooler": lambda: Output(roberta("sdpa"), "pooler_output"),
    "mpnet_eager_mean": lambda: MeanPooled(mpnet()),
    "mpnet_eager_hidden": lambda: Output(mpnet(), "last_hidden_state"),
    "albert_sdpa_mean": lambda: MeanPooled(albert("sdpa")),
    "albert_eager_pooler": lambda: Output(albert("eager"), "pooler_output"),
    "albert_sdpa_default_types": lambda: DefaultTypes(albert("sdpa")),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request):
    model = MODELS[request.param]().eval()
    gen = torch.Generator().manual_seed(1)
    calibration = [batch(model, 4, 4 + i % (MAX_SEQ - 3), gen) for i in range(12)]
    q = intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=dynamic(model))
    return request.param, model, q


def test_float_graph_equals_torch(exported):
    _, model, q = exported
    gen = torch.Generator().manual_seed(2)
    for n, s in SHAPES:
        xs = batch(model, n, s, gen)
        with torch.no_grad():
            want = model(*xs)
        got = q.graph.run(*xs)[q.graph.outputs[0]]
        np.testing.assert_allclose(real_positions(got, xs[1]).numpy(), real_positions(want, xs[1]).numpy(),
                                   atol=2e-5, rtol=1e-4)


def test_engine_tracks_torch_at_any_batch_and_length(exported):
    _, model, q = exported
    m = q.load(num_threads=2)
    gen = torch.Generator().manual_seed(3)
    for n, s in SHAPES:
        xs = batch(model, n, s, gen)
        with torch.no_grad():
            want = real_positions(model(*xs), xs[1]).numpy()
        got = m.run([x.numpy() for x in xs])
        assert got.shape == tuple(model(*xs).shape)
        got = real_positions(torch.from_numpy(got), xs[1]).numpy()
        c = cosine(got, want)
        assert c.mean() >= 0.99 and c.min() >= 0.97, (n, s, c.mean(), c.min())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_engine_equals_the_qat_eval_model_bit_for_bit(name):
    model = MODELS[name]().eval()
    gen = torch.Generator().manual_seed(4)
    qm = qat.prepare(model, batch(model, 2, 8, gen), dynamic_shapes=dynamic(model)).train()
    with torch.no_grad():
        for i in range(6):
            qm(*batch(model, 4, 4 + i % (MAX_SEQ - 3), gen))
    qm.eval()
    for n, s in SHAPES:
        xs = batch(model, n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=1 + n % 2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)


@pytest.mark.parametrize("name", ["bert_sdpa_mean", "mpnet_eager_mean", "distilbert_eager_hidden"])
def test_wide_ffn_reads_the_ffn_activation_wide(name):
    """wide_ffn: each FFN's GELU table writes int32 codes within the bound its linear's depth
    allows (K x 127 x bound <= 2^30), the linear reads them as int16 (dense int8 weights), the
    post-norm residual norms write wide; the engine tracks torch and equals intinfer.qat's eval
    model (and the oracle) bit for bit."""
    model = MODELS[name]().eval()
    gen = torch.Generator().manual_seed(5)
    calibration = [batch(model, 4, 4 + i % (MAX_SEQ - 3), gen) for i in range(8)]
    q = intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=dynamic(model), wide_ffn=True)
    luts = [op for op in q.builder.ops if op.type == "LUT"]
    readers = [op for op in q.builder.ops if op.type == "FULLY_CONNECTED" and op.inputs[0].dtype == "int32"]
    assert luts and all(op.outputs[0].dtype == "int32" for op in luts)
    assert len(readers) == len(luts)
    for op in readers:
        k = op.inputs[1].shape[1]
        assert op.attrs["input_bound"] == min(32767, (1 << 30) // (127 * k)) and op.inputs[1].dtype == "int8"
    assert any(op.type == "LAYER_NORM" and op.outputs[0].dtype == "int32" for op in q.builder.ops)
    m = q.load(num_threads=2)
    for n, s in SHAPES:
        xs = batch(model, n, s, gen)
        with torch.no_grad():
            want = real_positions(model(*xs), xs[1]).numpy()
        got = real_positions(torch.from_numpy(m.run([x.numpy() for x in xs])), xs[1]).numpy()
        c = cosine(got, want)
        assert c.mean() >= 0.99 and c.min() >= 0.97, (n, s, c.mean(), c.min())
    qm = qat.prepare(model, calibration[0], qat.QATConfig(wide_ffn=True), dynamic_shapes=dynamic(model)).train()
    with torch.no_grad():
        for xs in calibration[:4]:
            qm(*xs)
    qm.eval()
    for n, s in SHAPES:
        xs = batch(model, n, s, gen)
        want, _ = engine_and_oracle(qm, xs, num_threads=1 + n % 2)
        np.testing.assert_array_equal(qm(*xs).numpy(), want)


def test_wide_ffn_leaves_uint8_the_activation_of_a_linear_stored_below_int8():
    """The engine multiplies a wide input by int8 codes only: an FFN whose second linear has 4-bit
    (packed) weights keeps its activation uint8; 5-8 bits are stored as int8 and read it wide."""
    model = MODELS["bert_sdpa_mean"]().eval()
    gen = torch.Generator().manual_seed(6)
    xs = batch(model, 2, 6, gen)
    second = [name for name, _ in model.named_modules() if name.endswith("layer.0.output.dense")]
    assert len(second) == 1
    for bits, wide_luts in (({second[0]: 4}, 1), ({second[0]: 6}, 2), (5, 2)):
        q = intinfer.quantize(model, xs, [xs], dynamic_shapes=dynamic(model), wide_ffn=True, weight_bits=bits)
        luts = [op for op in q.builder.ops if op.type == "LUT"]
        assert len(luts) == 2 and sum(op.outputs[0].dtype == "int32" for op in luts) == wide_luts, bits
        np.testing.assert_array_equal(q.load().run([x.numpy() for x in xs], raw=True),
                                      oracle.run_graph(q.builder, [x.numpy().astype(np.int32) for x in xs]))


def test_a_split_norm_trains_one_pair_of_parameters():
    """split_residual_norms computes a norm twice (wide for the residual add, uint8 for the
    linears); in intinfer.qat both copies are one norm of the float model, with one pair of
    parameters."""
    model = MODELS["bert_sdpa_mean"]().eval()
    xs = batch(model, 2, 6, torch.Generator().manual_seed(7))
    qm = qat.prepare(model, xs, dynamic_shapes=dynamic(model))
    norms = {n.name: n for n in qm.graph.nodes if n.op == "layer_norm"}
    copies = [name for name in norms if name.endswith("_residual")]
    assert copies
    for name in copies:
        copy, first = qm.states[qm._keys[norms[name]]], qm.states[qm._keys[norms[name[:-len("_residual")]]]]
        assert copy.weight is first.weight and copy.bias is first.bias
    params = list(qm.parameters())
    assert len(params) == len({id(p) for p in params})


def test_wide_ffn_stores_a_block_sparse_ffn_linear_dense_with_a_warning():
    model = MODELS["bert_sdpa_mean"]().eval()
    second = dict(model.named_modules())[[n for n, _ in model.named_modules() if n.endswith("layer.1.output.dense")][0]]
    with torch.no_grad():
        second.weight[:, 8:] = 0  # 1 x 4 blocks: 2 of 16 kept in every row
    xs = batch(model, 2, 6, torch.Generator().manual_seed(8))
    with pytest.warns(UserWarning, match=r"reads a wide input \(wide_ffn\).*block-sparse weights \(12% of the "
                                         r"blocks\) are stored dense"):
        q = intinfer.quantize(model, xs, [xs], dynamic_shapes=dynamic(model), wide_ffn=True)
    assert all(op.inputs[1].encoding == "dense" for op in q.builder.ops if op.type == "FULLY_CONNECTED")
    sparse = intinfer.quantize(model, xs, [xs], dynamic_shapes=dynamic(model))
    assert any(op.inputs[1].block_sparse for op in sparse.builder.ops if op.type == "FULLY_CONNECTED")


@pytest.mark.parametrize("name", ["roberta_sdpa_mean", "roberta_eager_hidden", "mpnet_eager_mean",
                                  "mpnet_eager_hidden"])
def test_left_padded_batches_of_models_that_number_positions_from_the_padding(name):
    """RoBERTa and MPNet count positions over the tokens that are not padding (GATHER's counted
    positions): a sentence's real tokens get the same values left padded, right padded or alone,
    in the engine as in torch."""
    model = MODELS[name]().eval()
    gen = torch.Generator().manual_seed(8)
    calibration = [batch(model, 4, 4 + i % (MAX_SEQ - 3), gen) for i in range(8)]
    q = intinfer.quantize(model, calibration[0], calibration, dynamic_shapes=dynamic(model))
    assert any(op.type == "GATHER" and op.attrs.get("positions") == 2 for op in q.builder.ops)
    m = q.load()
    ids, mask = batch(model, 3, 12, gen)[:2]
    lengths = mask.sum(1)
    left_ids, left_mask = torch.full_like(ids, PAD), torch.zeros_like(mask)
    for i, n in enumerate(lengths.tolist()):
        left_ids[i, 12 - n:], left_mask[i, 12 - n:] = ids[i, :n], 1
    extra = [torch.zeros_like(ids)] * (n_inputs(model) - 2)  # token types
    right = m.run([x.numpy() for x in (ids, mask, *extra)])
    left = m.run([x.numpy() for x in (left_ids, left_mask, *extra)])
    with torch.no_grad():
        want = model(left_ids, left_mask, *extra).numpy()
    for i, n in enumerate(lengths.tolist()):
        real_left, real_want = (v[i, 12 - n:] if v.ndim == 3 else v[i] for v in (left, want))
        real_right = right[i, :n] if right.ndim == 3 else right[i]
        np.testing.assert_array_equal(real_left, real_right)
        assert cosine(real_left[None], real_want[None]).min() >= 0.98


# -- ViT: a [CLS] token concatenated to the patches, learned position embeddings, no mask --------


def vit(attn, head=None):
    config = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, attn_implementation=attn,
                                    num_labels=5, **SMALL)
    torch.manual_seed(0)
    cls = transformers.ViTForImageClassification if head == "classifier" else transformers.ViTModel
    return cls(config).eval()


class Pixels(torch.nn.Module):
    """One named output of a vision model called with pixel values."""

    def __init__(self, model, name):
        super().__init__()
        self.model, self.name = model, name

    def forward(self, pixel_values):
        return getattr(self.model(pixel_values=pixel_values), self.name)


VIT_MODELS = {
    "vit_sdpa_hidden": lambda: Pixels(vit("sdpa"), "last_hidden_state"),
    "vit_eager_pooler": lambda: Pixels(vit("eager"), "pooler_output"),
    "vit_sdpa_classifier": lambda: Pixels(vit("sdpa", "classifier"), "logits"),
}
VIT_DIMS = ({0: torch.export.Dim("batch", max=64)},)


def images(n, gen):
    return torch.randn(n, 3, 32, 32, generator=gen)


@pytest.mark.parametrize("name", sorted(VIT_MODELS))
def test_vit_exports_and_tracks_torch_at_any_batch(name):
    model = VIT_MODELS[name]().eval()
    gen = torch.Generator().manual_seed(5)
    calibration = [images(4, gen) for _ in range(4)]
    q = intinfer.quantize(model, (calibration[0],), calibration, dynamic_shapes=VIT_DIMS)
    m = q.load(num_threads=2)
    for n in (1, 3):
        x = images(n, gen)
        with torch.no_grad():
            want = model(x)
        torch.testing.assert_close(q.graph.run(x)[q.graph.outputs[0]], want, atol=2e-5, rtol=1e-4)
        got = m.run(x.numpy())
        assert got.shape == tuple(want.shape)
        c = cosine(got, want.numpy())
        print(f"\n{name} batch {n}: cosine with torch mean {c.mean():.4f} min {c.min():.4f}")
        # As for the CNNs (tests/test_cnn_models.py): an image model on random inputs, 0.98; the
        # classifier's 5 logits of a random head are the noisiest of the three outputs.
        assert c.mean() >= 0.98 and c.min() >= 0.97, (n, c.mean(), c.min())


def test_vit_engine_equals_the_qat_eval_model_bit_for_bit():
    model = VIT_MODELS["vit_eager_pooler"]().eval()
    gen = torch.Generator().manual_seed(6)
    qm = qat.prepare(model, (images(2, gen),), dynamic_shapes=VIT_DIMS).train()
    with torch.no_grad():
        for _ in range(4):
            qm(images(4, gen))
    qm.eval()
    for n in (1, 3):
        x = images(n, gen)
        want, _ = engine_and_oracle(qm, (x,), num_threads=2)
        np.testing.assert_array_equal(qm(x).numpy(), want)
