"""EgoM2P (Li et al., ICCV 2025) as an egoforge trainer plugin: egocentric multimodal masked pre-training.

Modules, each with one job:

- ``modalities``: the declarative table of the four modalities (rgb, depth, gaze, cam);
- ``clips``: raw recordings -> aligned 2 s clips; ``shards``: token shards (WebDataset) and the dataset mixture;
- ``traj_tokenizer`` (camera / gaze VQ-VAE), ``video_tokenizer`` (egoforge's FSQ video tokenizer), ``cosmos``
  (NVIDIA Cosmos DV4x8x8 adapter), ``tokenizers`` (open any of them), ``quantizers``, ``layers``, ``geometry``;
- ``masking`` (Dirichlet budgets), ``model`` (4M-style encoder-decoder), ``schedule``, ``loop`` (accelerate),
  ``train_model`` / ``train_tokenizers`` and ``register`` (registry entries);
- ``generate`` (ROAR decoding), ``inference`` (the four tasks end to end), ``metrics`` (pure functions).
"""
