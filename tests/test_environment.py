"""The pinned environment holds LLaMA-Factory 0.9.5 and verl 0.9.1 together (pip check + imports)."""

import subprocess
import sys

from packaging.version import Version


def test_pip_check_reports_no_broken_requirements():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pinned_versions_import_together():
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


def test_llamafactory_accepts_the_installed_stack():
    from llamafactory.extras.misc import check_dependencies

    check_dependencies()
