"""intinfer.distill (docs/distillation.md): the losses against formulas written here in numpy
(Hinton's soft targets and their gradient, the cross entropy, MiniLM's relation KL), the loop's
determinism and checkpoint resumption, the student builders against the teacher they came from,
and a distilled student exported to an .iif that the engine runs as tests/oracle.py says."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import intinfer  # noqa: E402
import oracle  # noqa: E402
from conftest import assert_same  # noqa: E402
from intinfer import distill as D  # noqa: E402
from intinfer.models.minilm import MiniLM, PooledEncoder, WordPieceTokenizer  # noqa: E402
from intinfer.prune import magnitude_prune, prune_ffn_units, prune_heads  # noqa: E402
from sample_models import tiny_bert, token_batch  # noqa: E402


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _logits(seed: int, shape=(5, 7)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64) * 3


# ----------------------------------------------------------------------------------------------
# Losses
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_targets_is_hintons_kl_times_t_squared(temperature):
    s, t = _logits(0), _logits(1)
    p, q = _softmax(t.numpy() / temperature), _softmax(s.numpy() / temperature)
    want = (p * (np.log(p) - np.log(q))).sum(1).mean() * temperature ** 2
    assert D.soft_targets(s, t, temperature).item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_soft_targets_gradient_is_t_times_q_minus_p(temperature):
    # Hinton et al. (2015), section 2: d(T^2 KL)/dz_i = T (q_i - p_i), here over a batch mean.
    s, t = _logits(2).requires_grad_(), _logits(3)
    D.soft_targets(s, t, temperature).backward()
    p, q = _softmax(t.numpy() / temperature), _softmax(s.detach().numpy() / temperature)
    np.testing.assert_allclose(s.grad.numpy(), temperature * (q - p) / len(p), rtol=1e-10, atol=1e-14)


def test_hinton_with_labels_mixes_soft_and_hard_targets():
    s, t = _logits(4), _logits(5)
    labels = torch.tensor([0, 3, 6, 1, 2])
    q = _softmax(s.numpy())
    ce = -np.log(q[np.arange(5), labels.numpy()]).mean()
    soft = D.soft_targets(s, t, 2.0).item()
    assert D.hinton(s, t, labels, 2.0, 0.3).item() == pytest.approx(0.3 * soft + 0.7 * ce, rel=1e-12)
    assert D.hinton(s, t, None, 2.0, 0.3).item() == pytest.approx(soft, rel=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        D.hinton(s, t, labels, 2.0, 1.5)
    with pytest.raises(ValueError, match="temperature"):
        D.soft_targets(s, t, 0.0)


def test_embedding_losses():
    a, b = _logits(6), _logits(7)
    an, bn = a.numpy(), b.numpy()
    cos = (an * bn).sum(1) / np.linalg.norm(an, axis=1) / np.linalg.norm(bn, axis=1)
    assert D.embedding_loss(a, b, "cosine").item() == pytest.approx(1 - cos.mean(), rel=1e-12)
    assert D.embedding_loss(a, b, "mse").item() == pytest.approx(((an - bn) ** 2).mean(), rel=1e-12)
    with pytest.raises(ValueError, match="unknown embedding loss"):
        D.embedding_loss(a, b, "l1")
    with pytest.raises(ValueError, match="equal shapes"):
        D.embedding_loss(a, b[:, :3])


def test_relation_kl_matches_a_loop_over_heads_and_real_queries():
    gen = torch.Generator().manual_seed(8)
    batch, seq, heads = 2, 5, 2
    ts = [torch.randn(batch, seq, 8, generator=gen, dtype=torch.float64) for _ in range(2)]
    ss = [torch.randn(batch, seq, 6, generator=gen, dtype=torch.float64) for _ in range(2)]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    bias = (1.0 - mask[:, None, None, :].double()) * -10000.0
    got = D.relation_kl(ss, ts, heads, bias, mask).item()
    total, count = 0.0, 0
    for b in range(batch):
        real = int(mask[b].sum())
        for i in range(real):
            for h in range(heads):
                def probs(a, c):
                    d = a.shape[-1] // heads
                    x = a[b, i, h * d:(h + 1) * d].numpy() @ c[b, :real, h * d:(h + 1) * d].numpy().T / np.sqrt(d)
                    return _softmax(x)
                p, q = probs(*ts), probs(*ss)
                total += (p * (np.log(p) - np.log(q))).sum() / heads
            count += 1
    assert got == pytest.approx(total / count, rel=1e-9)
    assert D.relation_kl(ts, ts, heads, bias, mask).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="relation heads"):
        D.relation_kl(ss, ts, 4, bias, mask)


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------

def _classifier(width: int, seed: int):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, width), nn.ReLU(), nn.Linear(width, 4))


def _digits_like(n_batches: int = 6, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(16, 10, generator=gen) for _ in range(n_batches)]


def _agreement(student, teacher, data) -> float:
    with torch.no_grad():
        return float(np.mean([(student(x).argmax(1) == teacher(x).argmax(1)).float().mean() for x in data]))


def test_distill_teaches_a_classifier_and_is_deterministic():
    teacher, data = _classifier(64, 0), _digits_like()
    students = [_classifier(8, 1) for _ in range(3)]
    before = _agreement(students[0], teacher, data)
    histories = [D.distill(s, teacher, data, "kl", epochs=30, lr=1e-2, seed=seed, progress=False)
                 for s, seed in zip(students, (0, 0, 1))]
    assert histories[0].losses[-1] < histories[0].losses[0] / 3
    assert _agreement(students[0], teacher, data) > max(before, 0.8)
    assert histories[0].steps == 30 * len(data)
    for a, b in zip(students[0].state_dict().values(), students[1].state_dict().values()):
        assert torch.equal(a, b)
    assert any(not torch.equal(a, b) for a, b in zip(students[0].state_dict().values(),
                                                     students[2].state_dict().values()))


def test_distill_with_hard_labels_and_log():
    teacher, data = _classifier(64, 0), _digits_like()
    labels = [teacher(x).argmax(1).roll(1) for x in data]  # labels that disagree with the teacher
    seen = []
    student = _classifier(8, 1)
    D.distill(student, teacher, data, "kl", labels=labels, alpha=0.0, epochs=40, lr=1e-2, progress=False,
              log=lambda e, loss: seen.append(e))
    assert seen == list(range(40))
    with torch.no_grad():
        hits = np.mean([(student(x).argmax(1) == y).float().mean() for x, y in zip(data, labels)])
    assert hits > 0.8  # alpha 0: the hard labels alone


def test_checkpoint_resumes_as_an_uninterrupted_run(tmp_path):
    teacher, data = _classifier(64, 0), _digits_like()
    whole, parts = _classifier(8, 1), _classifier(8, 1)
    D.distill(whole, teacher, data, "kl", epochs=4, lr=1e-2, seed=3, progress=False)
    path = tmp_path / "ckpt.pt"
    first = D.distill(parts, teacher, data, "kl", epochs=2, lr=1e-2, seed=3, progress=False, checkpoint=path)
    assert first.resumed_at == 0 and len(first.losses) == 2
    # A run cut after 2 of 4 epochs: the checkpoint says epoch 2; a fresh student resumes from it.
    state = torch.load(path, weights_only=False)
    state["fingerprint"]["epochs"] = 4
    torch.save(state, path)
    resumed = _classifier(8, 5)
    history = D.distill(resumed, teacher, data, "kl", epochs=4, lr=1e-2, seed=3, progress=False, checkpoint=path)
    assert history.resumed_at == 2 and len(history.losses) == 4 and history.steps == 2 * len(data)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="checkpoint .* another distillation"):
        D.distill(_classifier(8, 1), teacher, data, "kl", epochs=4, lr=1e-3, seed=3, progress=False, checkpoint=path)


def test_masks_keep_pruned_weights_zero():
    teacher, data = _classifier(64, 0), _digits_like()
    student = _classifier(32, 1)
    masks = magnitude_prune(student, 0.5, block=2, layers=["0", "2"])
    D.distill(student, teacher, data, "kl", epochs=3, lr=1e-2, masks=masks, progress=False)
    for name in ("0", "2"):
        weight = student.get_submodule(name).weight
        assert torch.all(weight[~masks[name]] == 0) and torch.all(weight[masks[name]] != 0)


def test_bad_input_is_refused_by_name():
    teacher, data = _classifier(64, 0), _digits_like()
    small = _classifier(8, 1)
    with pytest.raises(ValueError, match="no data"):
        D.distill(small, teacher, [], "kl")
    with pytest.raises(ValueError, match="more than the teacher"):
        D.distill(_classifier(128, 1), teacher, data, "kl")
    with pytest.raises(ValueError, match="unknown loss"):
        D.distill(small, teacher, data, "l1")
    with pytest.raises(ValueError, match="labels are used by the 'kl' loss"):
        D.distill(small, teacher, data, "mse", labels=[None] * len(data))
    with pytest.raises(ValueError, match="teacher_data has 1 batches"):
        D.distill(small, teacher, data, "kl", teacher_data=data[:1])
    with pytest.raises(ValueError, match="no module 'nope'"):
        D.distill(small, teacher, data, "kl", hidden_states=[("nope", "0")])
    with pytest.raises(ValueError, match="not an attention layer"):
        D.distill(small, teacher, data, "kl", attention=[("0", "0")])
    with pytest.raises(ValueError, match="epochs"):
        D.distill(small, teacher, data, "kl", epochs=-1)


def _tiny_minilm(hidden=32, layers=4, heads=4, seed=0):
    torch.manual_seed(seed)
    return MiniLM(vocab_size=50, hidden=hidden, layers=layers, heads=heads, intermediate=2 * hidden,
                  max_positions=16).eval()


def test_hidden_states_and_attention_relations_train_a_narrower_shallower_encoder():
    teacher = _tiny_minilm()
    student = D.narrow(D.take_layers(teacher, every=2), 16)
    gen = torch.Generator().manual_seed(1)
    data = [token_batch(4, 9, gen) for _ in range(4)]
    count = D.parameter_count(student)
    terms = {}
    pair = [("bert.layers.1", "bert.layers.3")]
    for what, options in {"hidden": dict(hidden_states=pair),
                          "attention": dict(attention=pair, relations=("qk", "vv"))}.items():
        s = copy.deepcopy(student)
        history = D.distill(PooledEncoder(s), PooledEncoder(teacher), data, None, epochs=15, lr=3e-3,
                            progress=False, **options)
        assert history.losses[-1] < history.losses[0]
        assert D.parameter_count(s) == count  # the projection is the loop's, not the student's
        terms[what] = history.losses
    assert terms["hidden"] != terms["attention"]
    with pytest.raises(ValueError, match=r"output has shape \[4, 16\], the teacher's \[4, 32\]: give a narrower"):
        D.distill(PooledEncoder(student), PooledEncoder(teacher), data, "cosine", progress=False)
    with pytest.raises(ValueError, match="loss=None matches hidden states or attention relations only"):
        D.distill(PooledEncoder(student), PooledEncoder(teacher), data, None, progress=False)


# ----------------------------------------------------------------------------------------------
# Students
# ----------------------------------------------------------------------------------------------

def test_take_layers_keeps_every_kth_from_the_last():
    teacher = _tiny_minilm(layers=6)
    student = D.take_layers(teacher, every=2)
    assert len(student.layers) == 3 and len(teacher.layers) == 6
    for ours, theirs in zip(student.layers, (teacher.layers[1], teacher.layers[3], teacher.layers[5])):
        for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
            assert torch.equal(a, b)
    assert [len(D.take_layers(teacher, every=k).layers) for k in (1, 4, 6, 9)] == [6, 2, 1, 1]
    whole = D.take_layers(teacher, every=1)
    ids, mask, types = token_batch(2, 7, torch.Generator().manual_seed(0))
    assert torch.equal(whole(ids, mask, types), teacher(ids, mask, types))
    assert len(D.take_layers(teacher, layers=[0, 5]).layers) == 2
    for bad, match in ((dict(), "one of"), (dict(every=2, layers=[1]), "one of"), (dict(every=0), "every"),
                       (dict(layers=[]), "empty"), (dict(layers=[6]), "0..5"), (dict(layers=[3, 1]), "increasing")):
        with pytest.raises(ValueError, match=match):
            D.take_layers(teacher, **bad)
    with pytest.raises(ValueError, match="no layer stack"):
        D.take_layers(nn.Linear(2, 2), every=2)


def test_take_layers_on_a_transformers_encoder():
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=4, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16)
    teacher = transformers.BertModel(config, add_pooling_layer=False).eval()
    student = D.take_layers(teacher, every=2)
    assert len(student.encoder.layer) == 2 and student.config.num_hidden_layers == 2
    assert teacher.config.num_hidden_layers == 4
    ids = torch.tensor([[2, 5, 7, 3]])
    assert student(input_ids=ids).last_hidden_state.shape == (1, 4, 16)


def test_narrow_slices_the_teachers_weights():
    teacher = _tiny_minilm(hidden=32, heads=4)
    student = D.narrow(teacher, 16)
    assert (student.hidden, student.layers[0].heads, student.layers[0].head_dim) == (16, 2, 8)
    assert student.layers[0].ffn_in.out_features == 32
    assert torch.equal(student.layers[2].query.weight, teacher.layers[2].query.weight[:16, :16])
    assert torch.equal(student.layers[2].ffn_out.weight, teacher.layers[2].ffn_out.weight[:16, :32])
    assert torch.equal(student.word_embeddings.weight, teacher.word_embeddings.weight[:, :16])
    ids, mask, types = token_batch(2, 7, torch.Generator().manual_seed(0))
    assert student(ids, mask, types).shape == (2, 7, 16)
    for bad, match in ((32, "narrower"), (48, "narrower"), (12, "multiple of the head size")):
        with pytest.raises(ValueError, match=match):
            D.narrow(teacher, bad)
    with pytest.raises(ValueError, match="intermediate"):
        D.narrow(teacher, 16, intermediate=65)
    with pytest.raises(TypeError, match="MiniLM"):
        D.narrow(nn.Linear(2, 2), 1)
    for prune, match in ((lambda m: prune_heads(m, {0: [0]}), r"\[3, 4\] heads"),
                         (lambda m: prune_ffn_units(m, {1: [0]}), r"\[63, 64\] feed-forward units")):
        pruned = copy.deepcopy(teacher)
        prune(pruned)
        with pytest.raises(ValueError, match=match):
            D.narrow(pruned, 16)


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat", "a", ".", "##s",
         "ran", "far", "bird", "flew", "home", "##ing", "sun", "rose", "mats"]


def _vocab_model(seed: int = 0):
    torch.manual_seed(seed)
    model = MiniLM(vocab_size=len(VOCAB), hidden=16, layers=1, heads=2, intermediate=32, max_positions=16).eval()
    model.tokenizer = WordPieceTokenizer(VOCAB, max_length=16)
    return model


def test_shrink_vocabulary_keeps_the_corpus_tokens():
    teacher = _vocab_model()
    corpus = ["The cat sat on the mat.", "A dog ran far.", "cats"]
    student, report = D.shrink_vocabulary(teacher, corpus)
    kept = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat", "a", ".", "##s",
            "ran", "far"]
    assert student.tokenizer.id_to_token == kept
    assert (report.teacher_tokens, report.student_tokens) == (len(VOCAB), len(kept))
    assert report.teacher_unknown_rate == report.student_unknown_rate == 0.0
    for text in corpus:
        assert student.tokenizer.tokenize(text) == teacher.tokenizer.tokenize(text)
    np.testing.assert_array_equal(student.embed(corpus), teacher.embed(corpus))
    assert torch.equal(student.word_embeddings.weight, teacher.word_embeddings.weight[[VOCAB.index(t) for t in kept]])


def test_shrink_vocabulary_reports_the_held_out_tokens_it_drops():
    teacher = _vocab_model()
    held_out = ["the bird flew home", "the sun rose ."]
    with pytest.raises(ValueError, match=r"drops tokens the held-out text needs: .* of 8 held-out tokens 75\.0000% "
                                         r"dropped .* unknown 0\.0000% -> 75\.0000%"):
        D.shrink_vocabulary(teacher, ["the cat sat"], held_out=held_out)
    student, report = D.shrink_vocabulary(teacher, ["the cat sat"], held_out=held_out, max_dropped=0.8)
    assert (report.dropped_rate, report.student_unknown_rate, report.held_out_tokens) == (0.75, 0.75, 8)


def test_shrink_vocabulary_counts_words_split_into_other_pieces_as_dropped():
    # "mats" is one token of the teacher's; the student, without it, reads "mat ##s": no unknown
    # token, yet not what the teacher read.
    teacher = _vocab_model()
    corpus, held_out = ["the mat .", "cats"], ["the mats ."]
    student, report = D.shrink_vocabulary(teacher, corpus, held_out=held_out, max_dropped=0.5)
    assert teacher.tokenizer.tokenize(held_out[0]) == ["the", "mats", "."]
    assert student.tokenizer.tokenize(held_out[0]) == ["the", "mat", "##s", "."]
    assert report.dropped_rate == pytest.approx(1 / 3) and report.student_unknown_rate == 0.0
    with pytest.raises(ValueError, match=r"33\.3333% dropped"):
        D.shrink_vocabulary(teacher, corpus, held_out=held_out)
    for corpus in ([], ["", "  "]):
        with pytest.raises(ValueError, match="corpus is empty"):
            D.shrink_vocabulary(teacher, corpus)


def test_factorize_embeddings_is_the_truncated_svd():
    teacher = _vocab_model()
    rank = 4
    student = D.factorize_embeddings(teacher, rank)
    assert isinstance(student.word_embeddings, D.FactorizedEmbedding)
    assert isinstance(teacher.word_embeddings, nn.Embedding)
    w = teacher.word_embeddings.weight.detach().double().numpy()
    u, s, vh = np.linalg.svd(w, full_matrices=False)
    best = (u[:, :rank] * s[:rank]) @ vh[:rank]
    ids = torch.arange(len(VOCAB))
    np.testing.assert_allclose(student.word_embeddings(ids).detach().numpy(), best, rtol=1e-5, atol=1e-6)
    shrunk, _ = D.shrink_vocabulary(student, ["the cat sat"])
    assert shrunk.word_embeddings.table.num_embeddings == 8
    with pytest.raises(ValueError, match="rank 16"):
        D.factorize_embeddings(teacher, 16)
    with pytest.raises(ValueError, match="no torch.nn.Embedding 'nope'"):
        D.factorize_embeddings(teacher, 4, name="nope")


# ----------------------------------------------------------------------------------------------
# Into the engine
# ----------------------------------------------------------------------------------------------

def test_a_distilled_factorized_student_runs_in_the_engine_as_the_oracle():
    teacher = tiny_bert(seed=0)
    student = PooledEncoder(D.factorize_embeddings(D.take_layers(teacher.bert, every=2), 8)).eval()
    gen = torch.Generator().manual_seed(2)
    data = [token_batch(4, 8, gen) for _ in range(4)]
    history = D.distill(student, teacher, data, "cosine", epochs=5, lr=1e-3, progress=False)
    assert history.losses[-1] < history.losses[0]
    dims = {0: torch.export.Dim("batch", max=64), 1: torch.export.Dim("seq", max=16)}
    q = intinfer.quantize(student, data[0], data, dynamic_shapes=(dims,) * 3)
    xs = [x.numpy() for x in token_batch(3, 11, gen)]
    got = q.load().run(xs, raw=True)
    assert_same(got, oracle.run_graph(q.builder, [x.astype(np.int32) for x in xs]))
    engine = q.load().run(xs)
    with torch.no_grad():
        want = student(*(torch.from_numpy(x).long() for x in xs)).numpy()
    cos = (engine * want).sum(1) / np.linalg.norm(engine, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.95, cos


# ----------------------------------------------------------------------------------------------
# transformers encoders with a tokenizers.Tokenizer
# ----------------------------------------------------------------------------------------------

HF_WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", ".", "##s", "ran", "far", "bird", "flew", "home"]


def tiny_mpnet(seed: int = 0):
    """A 4-layer, hidden-32 transformers MPNetModel (random weights, eager attention) with a
    WordPiece tokenizers.Tokenizer as MPNet's (<s> text </s>, <pad> = 1) attached as .tokenizer."""
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "[UNK]", *HF_WORDS])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    tok.post_processor = tokenizers.processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.enable_padding(pad_id=1, pad_token="<pad>")
    torch.manual_seed(seed)
    config = transformers.MPNetConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                                      intermediate_size=64, max_position_embeddings=40, pad_token_id=1)
    config._attn_implementation = "eager"
    model = transformers.MPNetModel(config, add_pooling_layer=False).eval()
    model.tokenizer = tok
    return model


def _hf_embed(model, texts):
    from intinfer.compress import MeanPooled

    enc = model.tokenizer.encode_batch(texts)
    ids, mask = (torch.tensor([getattr(e, k) for e in enc]) for k in ("ids", "attention_mask"))
    with torch.no_grad():
        return MeanPooled(model).eval()(ids, mask).numpy()


def test_shrink_vocabulary_of_a_transformers_encoder():
    teacher = tiny_mpnet()
    corpus = ["The cat sat on the mat.", "A dog ran far.", "cats"]
    student, report = D.shrink_vocabulary(teacher, corpus)
    # the specials are those the tokenizer names (unk, the post-processor's, padding): <unk> is not one here
    kept = ["<s>", "<pad>", "</s>", "[UNK]", "the", "cat", "dog", "sat", "on", "mat", "a", ".", "##s", "ran", "far"]
    assert sorted(student.tokenizer.get_vocab().items(), key=lambda kv: kv[1]) == [(t, i) for i, t in enumerate(kept)]
    assert student.config.vocab_size == len(kept) == report.student_tokens and teacher.config.vocab_size == 19
    assert student.embeddings.word_embeddings.padding_idx == 1
    for text in corpus:
        assert student.tokenizer.encode(text).tokens == teacher.tokenizer.encode(text).tokens
    np.testing.assert_array_equal(_hf_embed(student, corpus), _hf_embed(teacher, corpus))
    with pytest.raises(ValueError, match=r"of 4 held-out tokens 75\.0000% dropped"):
        D.shrink_vocabulary(teacher, ["the cat"], held_out=["the bird flew home"])
    small = D.factorize_embeddings(D.take_layers(teacher, every=2), 4)
    assert small.config.num_hidden_layers == 2
    shrunk, _ = D.shrink_vocabulary(small, corpus)
    assert shrunk.embeddings.word_embeddings.table.num_embeddings == len(kept)
    assert _hf_embed(shrunk, corpus).shape == (3, 32)
