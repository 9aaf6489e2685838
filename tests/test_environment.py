"""Each locked environment installs clean (pip check) and imports its stack: `sft` holds LLaMA-Factory 0.9.5 beside
verl 0.9.1's CPU classes; `rl` holds verl 0.9.1 with the vLLM its `vllm` extra pins, and no LLaMA-Factory."""

import subprocess
import sys

import pytest
from packaging.version import Version
from test_locks import current_environment

ENVIRONMENT = current_environment()


def test_pip_check_reports_no_broken_requirements():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(ENVIRONMENT != "sft", reason="the sft environment's stack")
def test_sft_versions_import_together():
    import deepspeed  # noqa: F401
    import llamafactory
    import modelscope  # noqa: F401
    import qwen_vl_utils  # noqa: F401
    import torch
    import torchvision
    import transformers
    import verl
    from verl.trainer.ppo import core_algos  # noqa: F401

    assert llamafactory.__version__ == "0.9.5"
    assert verl.__version__ == "0.9.1"
    assert Version("5.5.3") <= Version(transformers.__version__) <= Version("5.5.4")
    assert Version(torch.__version__.split("+")[0]) <= Version("2.14.1")
    assert torchvision.__version__  # the CUDA build imports and runs on CPU


@pytest.mark.skipif(ENVIRONMENT != "sft", reason="LLaMA-Factory is in the sft environment only")
def test_llamafactory_accepts_the_installed_stack():
    from llamafactory.extras.misc import check_dependencies

    check_dependencies()


@pytest.mark.skipif(ENVIRONMENT != "rl", reason="the rl environment's stack")
def test_rl_versions_import_together():
    """The CUDA wheels of the GPU RL environment install and import on a CPU machine."""
    import torch
    import transformers
    import verl
    import vllm
    from verl.trainer.ppo import core_algos  # noqa: F401

    assert (verl.__version__, vllm.__version__, transformers.__version__) == ("0.9.1", "0.24.0", "5.9.0")
    assert torch.__version__.split("+")[0] == "2.11.0"
    with pytest.raises(ImportError):
        import llamafactory  # noqa: F401
