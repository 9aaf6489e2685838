"""LEGO (Lai et al., ECCV 2024): egocentric action frame generation.

Stage A tunes a vision-language model with LLaMA-Factory to describe how an action is performed
(``recipes/lego_vllm_*.yaml``); :mod:`egoforge.lego.features` then saves its enriched description, its image
features after the projector and the hidden states of the generated text. Stage B trains an InstructPix2Pix-style
latent diffusion model on diffusers whose cross-attention also sees those VLLM features
(:mod:`egoforge.lego.trainer`, ``egoforge train recipes/lego_ldm_*.yaml``), samples target frames with Euler
ancestral and dual classifier-free guidance (:mod:`egoforge.lego.sampling`) and scores them against the true
action frames (:mod:`egoforge.lego.metrics`).

Modules: ``formats`` (the LEGO json and GPT-curation files, validation), ``convert`` (to ShareGPT and to the LDM
index), ``actions`` (the query and action normalisation), ``features`` (stage-A feature extraction and the
safetensors feature store), ``conditioning`` / ``guidance`` (the VLLM conditioning and the dropout / dual-guidance
math), ``model`` (building and saving the LDM), ``dataset``, ``trainer``, ``register`` (the ``egoforge train``
entry), ``sampling``, ``metrics``.
"""
