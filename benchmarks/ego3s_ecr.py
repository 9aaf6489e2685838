"""ECR bookkeeping cost per training step at the paper's scale: 512 prompts x 5 rollouts, 3,180 active samples,
a 12,000-sample pool, probe set 500, checks every 100 steps.

Compared with what verl does with the same batch anyway: ``compute_grpo_outcome_advantage`` on 2,560 responses
of 768 tokens (the stock path the ECR trainer adds its observation to). Also the size of the ECR state that
rides in ``data.pt`` and its JSON round trip (the resume path).

    python benchmarks/ego3s_ecr.py [--steps 300]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.ego3s.ecr import ECRConfig, ECRCurriculum  # noqa: E402
from egoforge.verl.dataset import group_rewards  # noqa: E402

PROMPTS, ROLLOUTS, ACTIVE, POOL = 512, 5, 3180, 12000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    import torch
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    rng = random.Random(0)
    active = [str(i) for i in range(ACTIVE)]
    pool = [str(i) for i in range(ACTIVE, POOL)]
    curriculum = ECRCurriculum(active, pool, ECRConfig())  # paper: probe 500, interval 100, lambda_s 0.6
    solved = {x: rng.random() for x in active + pool}  # per-sample chance a rollout is right

    def batch(step):
        slots = rng.sample(range(len(curriculum.slots)), PROMPTS)
        uids, indices, scores = [], [], []
        for slot in slots:
            sample = curriculum.slots[slot]
            p = min(1.0, solved[sample] + 0.002 * step)  # the policy improves: more groups become all-correct
            uids += [f"{step}-{slot}"] * ROLLOUTS
            indices += [int(sample)] * ROLLOUTS
            scores += [float(rng.random() < p) for _ in range(ROLLOUTS)]
        return uids, indices, scores

    observe_times, check_times, recurations = [], [], 0
    for step in range(1, args.steps + 1):
        uids, indices, scores = batch(step)
        start = time.perf_counter()
        curriculum.observe_groups((str(i), r) for i, r in group_rewards(uids, indices, scores).items())
        observe_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = curriculum.step(step)
        check_times.append(time.perf_counter() - start)
        recurations += bool(result and result.added)
    observe = sorted(observe_times)[len(observe_times) // 2]
    checks = [t for step, t in enumerate(check_times, start=1) if step % 100 == 0]
    check = max(checks) if checks else 0.0
    per_step = observe + check / 100

    uids, indices, scores = batch(args.steps + 1)
    rewards = torch.zeros(PROMPTS * ROLLOUTS, 768)
    rewards[:, 300] = torch.tensor(scores)
    mask = torch.ones_like(rewards)
    index = list(uids)
    grpo, _ = timeit(lambda: compute_grpo_outcome_advantage(rewards, mask, index), repeat=3)
    state = curriculum.state_dict()
    encoded = json.dumps(state)
    round_trip, _ = timeit(lambda: ECRCurriculum.from_state_dict(json.loads(encoded)), repeat=3)

    print(f"{args.steps} steps of {PROMPTS} prompts x {ROLLOUTS} rollouts over {ACTIVE} active / {POOL - ACTIVE} "
          f"pool samples; {recurations} recuration(s)")
    print(table(["work", "ms", "ratio to verl's GRPO advantage"], [
        ["verl compute_grpo_outcome_advantage (2,560 x 768)", f"{1000 * grpo:.1f}", "1.00"],
        ["ECR observe (group 2,560 rewards, 512 variance states)", f"{1000 * observe:.2f}", f"{observe / grpo:.3f}"],
        ["ECR check + recuration (every 100 steps, worst)", f"{1000 * check:.2f}", f"{check / grpo:.3f}"],
        ["ECR amortised per step", f"{1000 * per_step:.2f}", f"{per_step / grpo:.3f}"],
        ["ECR state JSON round trip (resume)", f"{1000 * round_trip:.1f}", f"{round_trip / grpo:.3f}"],
    ]))
    print(f"ECR state in data.pt: {len(encoded) / 1024:.0f} KiB as JSON")


if __name__ == "__main__":
    main()
