"""EgoAgent (Chen et al., ICCV 2025) on HF/accelerate: data preparation, model, losses, two trainers, evaluation.

Importing this package is light; the model classes live in ``egoforge.egoagent.backbone`` (importing it also
registers ``egoagent`` with transformers' AutoConfig/AutoModel).
"""
