"""Registration into LLaMA-Factory: egoforge's chat templates and multimodal plugins.

Loaded in every process by the start-up hook (``egoforge._startup``); ``register_all()`` is also safe to call by
hand (tests, notebooks, environments started with ``python -S``).
"""
