"""intinfer.distill: knowledge distillation into smaller students (docs/distillation.md).

Hinton's soft targets (with or without hard labels) for classifiers; for encoders, the student's
sentence embedding matched to the teacher's (cosine or MSE), optionally hidden states (through a
learned projection where the widths differ) and MiniLM's self-attention relations. Students are
made from the teacher: every k-th layer, a narrower hidden size, a vocabulary shrunk to a corpus,
a factorized embedding table.

    student = distill.take_layers(teacher, every=2)
    distill.distill(PooledEncoder(student), PooledEncoder(teacher), batches, "cosine", epochs=3)
"""

from .losses import embedding_loss, hinton, relation_kl, soft_targets
from .students import (FactorizedEmbedding, VocabularyReport, factorize_embeddings, narrow, shrink_vocabulary,
                       take_layers)
from .train import History, distill, parameter_count

__all__ = ["FactorizedEmbedding", "History", "VocabularyReport", "distill", "embedding_loss", "factorize_embeddings",
           "hinton", "narrow", "parameter_count", "relation_kl", "shrink_vocabulary", "soft_targets", "take_layers"]
