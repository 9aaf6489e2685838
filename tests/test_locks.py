"""The committed locks are what `make setup` / `make setup-rl` install: each satisfies setup.cfg's ranges for its
extras, holds what its environment promises, and the running environment is exactly its lock."""

from __future__ import annotations

import configparser
import importlib.metadata as metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from egoforge.doctor import lock_drift

REPO = Path(__file__).resolve().parents[1]
# Which extras each lock resolves (locks/compile.sh passes the same list to `uv pip compile`).
LOCK_EXTRAS = {
    "sft": ("sft", "verl", "eval", "diffusion", "shards", "inspect", "dev"),
    "rl": ("rl", "dev"),
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def read_lock(name: str) -> dict[str, Version]:
    pins = {}
    for number, line in enumerate((REPO / "locks" / f"{name}.txt").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"locks/{name}.txt line {number} is not an exact pin: {line!r}"
        pins[canonicalize_name(match[1])] = Version(match[2])
    return pins


def setup_cfg_requirements(extras: tuple[str, ...]) -> list[Requirement]:
    config = configparser.ConfigParser(interpolation=configparser.BasicInterpolation())
    config.read(REPO / "setup.cfg")
    lines = config["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += config["options.extras_require"][extra].splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.strip().startswith("#")]


def violations(lock: dict[str, Version], requirements: list[Requirement]) -> list[str]:
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in lock:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(lock[name], prereleases=True):
            problems.append(f"{requirement}: the lock has {lock[name]}")
    return problems


def current_environment() -> str | None:
    """The lock this interpreter was installed from: LLaMA-Factory marks sft, vLLM marks rl."""
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    if "llamafactory" in installed:
        return "sft"
    if "vllm" in installed:
        return "rl"
    return None


@pytest.mark.parametrize("lock", sorted(LOCK_EXTRAS))
def test_lock_satisfies_setup_cfg(lock):
    assert violations(read_lock(lock), setup_cfg_requirements(LOCK_EXTRAS[lock])) == []


def test_satisfaction_check_catches_a_drifted_pin():
    """The check above can fail: a lock holding filelock 4.3.2 violates the eval extra's `filelock<4.3`."""
    lock = read_lock("sft") | {"filelock": Version("4.3.2")}
    assert violations(lock, setup_cfg_requirements(("eval",))) == ["filelock<4.3: the lock has 4.3.2"]


def test_sft_lock_holds_the_llamafactory_stack():
    lock = read_lock("sft")
    assert lock["llamafactory"] == Version("0.9.5") and lock["verl"] == Version("0.9.1")
    assert Version("5.5.3") <= lock["transformers"] <= Version("5.5.4")
    assert lock["filelock"] < Version("4.3")  # lmms-eval 0.7.3 imports filelock._api
    assert "vllm" not in lock


def test_rl_lock_holds_what_verls_vllm_extra_pins():
    lock = read_lock("rl")
    expected = {"verl": "0.9.1", "vllm": "0.24.0", "torch": "2.11.0", "torchvision": "0.26.0", "transformers": "5.9.0"}
    assert {name: str(lock[name]) for name in expected} == expected
    assert "llamafactory" not in lock


def test_both_locks_pin_the_same_uv():
    """`make setup` installs the lock's uv before syncing; the two locks must agree on it."""
    assert read_lock("sft")["uv"] == read_lock("rl")["uv"]


def test_running_environment_is_exactly_its_lock():
    environment = current_environment()
    if environment is None:
        pytest.skip("not a locked egoforge environment (neither LLaMA-Factory nor vLLM is installed)")
    drifted = lock_drift({name: str(pinned) for name, pinned in read_lock(environment).items()})
    assert drifted == [], (f"the {environment} environment drifted from locks/{environment}.txt "
                           f"(make setup / make setup-rl re-syncs it): {drifted}")
