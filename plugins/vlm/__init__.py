"""Qwen-VL generation, one package for every pipeline (EgoCross evaluation, the lmms-eval model, CSM, LEGO features,
the LLM judges).

- :mod:`~egoforge.vlm.request`: what is asked (a prompt with images / clips, greedy or ``n`` samples, stops);
- :mod:`~egoforge.vlm.loading`: a checkpoint or LoRA folder -> model, processor, device, dtype (offline paths);
- engines with one method, ``generate(requests) -> list[list[str]]`` (``n`` replies per request):
  :mod:`~egoforge.vlm.transformers_engine` and :mod:`~egoforge.vlm.vllm_engine` (in-process);
- :mod:`~egoforge.vlm.openai_client`: an OpenAI-compatible chat server (the judges' engine).

Imports flow one way: pipelines import ``egoforge.vlm``; it imports only ``egoforge.data`` and third-party code.
"""

from __future__ import annotations

from egoforge.vlm.request import GREEDY, GenerationRequest, Sampling, Visual

ENGINES = ("transformers", "vllm")

__all__ = ["ENGINES", "GREEDY", "GenerationRequest", "Sampling", "Visual", "make_engine"]


def make_engine(name: str, model: str, **kwargs):
    """The engine ``name`` ("transformers" or "vllm") over ``model``; ``kwargs`` go to its constructor."""
    if name == "transformers":
        from egoforge.vlm.transformers_engine import TransformersEngine

        return TransformersEngine(model, **kwargs)
    if name == "vllm":
        from egoforge.vlm.vllm_engine import VLLMEngine

        return VLLMEngine(model, **kwargs)
    raise ValueError(f"unknown generation backend {name!r}: choose 'transformers' or 'vllm'")
