"""The audiocraft wing: audiocraft's language models behind `TAGModel`, layered as audiocraft is.

- what wraps audiocraft's models: `lm` (``LMModel``: AudioGen, MusicGen), `magnet` (``MagnetLMModel``), `load`
  (the names `load_model` routes here: debug models, real checkpoints, random architectures), `checkpoints`
  (audiocraft's checkpoint files, read safely) and `architectures` (audiocraft's real configurations);
- what reaches into audiocraft's modules: `self_attention` (its ``StreamingMultiheadAttention``) and `sampling`
  (its sampling utilities), both beside the shared cross-attention edit (`lightning_agx.models.attention`);
- `_install`: importing audiocraft the way the package uses it.

Importing this package imports none of them (nor audiocraft).
"""
