"""ECR at the recipe's cadence: the official step (8 prompts x 5 rollouts, 397 steps per epoch, 794 in 2 epochs)
over 3,180 active samples and a 12,000-sample pool, probe set 500, checks every 100 steps.

Reports, per check, how much of the probe was measured and whether a decision was made (each sample is rolled
out about once per epoch at 8 prompts per step: first-epoch checks cannot decide), and the bookkeeping cost
compared with what verl does with the same batch anyway: ``compute_grpo_outcome_advantage`` on the step's
responses of 768 tokens. Also the size of the ECR state that rides in ``data.pt`` and its JSON round trip.
``--prompts 64 --interval 12`` is the larger-batch alternative of docs/ego3s.md.

    python benchmarks/ego3s_ecr.py [--prompts 8] [--interval 100] [--epochs 2]
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

ROLLOUTS, ACTIVE, POOL = 5, 3180, 12000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step (data.train_batch_size)")
    parser.add_argument("--interval", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    import torch
    from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

    prompts = args.prompts
    steps_per_epoch = ACTIVE // prompts
    args.steps = steps_per_epoch * args.epochs
    rng = random.Random(0)
    active = [str(i) for i in range(ACTIVE)]
    pool = [str(i) for i in range(ACTIVE, POOL)]
    curriculum = ECRCurriculum(active, pool, ECRConfig(interval=args.interval))  # probe 500, lambda_s 0.6
    solved = {x: rng.random() for x in active + pool}  # per-sample chance a rollout is right
    order: list[int] = []

    def batch(step):
        if not order:  # verl's sampler: a fresh permutation of the slots every epoch, drop_last
            order.extend(rng.sample(range(len(curriculum.slots)), len(curriculum.slots))[:steps_per_epoch * prompts])
        slots = [order.pop() for _ in range(prompts)]
        uids, indices, scores = [], [], []
        for slot in slots:
            sample = curriculum.slots[slot]
            p = min(1.0, solved[sample] + 0.5 * step / args.steps)  # the policy improves: more all-correct groups
            uids += [f"{step}-{slot}"] * ROLLOUTS
            indices += [int(sample)] * ROLLOUTS
            scores += [float(rng.random() < p) for _ in range(ROLLOUTS)]
        return uids, indices, scores

    observe_times, check_times, recurations, decisions = [], [], 0, []
    for step in range(1, args.steps + 1):
        uids, indices, scores = batch(step)
        start = time.perf_counter()
        curriculum.observe_groups((str(i), r) for i, r in group_rewards(uids, indices, scores).items())
        observe_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = curriculum.step(step)
        check_times.append(time.perf_counter() - start)
        recurations += bool(result and result.added)
        if result is not None:
            decisions.append([str(step), f"{result.measured / len(curriculum.probe):.0%}",
                              "-" if result.stability is None else f"{result.stability:.2f}",
                              "yes" if result.stagnant else "no", str(len(result.added))])
    observe = sorted(observe_times)[len(observe_times) // 2]
    checks = [t for step, t in enumerate(check_times, start=1) if step % args.interval == 0]
    check = max(checks) if checks else 0.0
    per_step = observe + check / args.interval

    uids, indices, scores = batch(args.steps + 1)
    rewards = torch.zeros(prompts * ROLLOUTS, 768)
    rewards[:, 300] = torch.tensor(scores)
    mask = torch.ones_like(rewards)
    index = list(uids)
    grpo, _ = timeit(lambda: compute_grpo_outcome_advantage(rewards, mask, index), repeat=3)
    state = curriculum.state_dict()
    encoded = json.dumps(state)
    round_trip, _ = timeit(lambda: ECRCurriculum.from_state_dict(json.loads(encoded)), repeat=3)

    n = prompts * ROLLOUTS
    print(f"{args.steps} steps of {prompts} prompts x {ROLLOUTS} rollouts over {ACTIVE} active / {POOL - ACTIVE} "
          f"pool samples; checks every {args.interval} steps; {recurations} recuration(s)")
    print(table(["check at step", "probe measured", "S_k", "stagnant", "added"], decisions))
    print(table(["work", "ms", "ratio to verl's GRPO advantage"], [
        [f"verl compute_grpo_outcome_advantage ({n:,} x 768)", f"{1000 * grpo:.1f}", "1.00"],
        [f"ECR observe (group {n:,} rewards, {prompts} variance states)", f"{1000 * observe:.2f}",
         f"{observe / grpo:.3f}"],
        [f"ECR check + recuration (every {args.interval} steps, worst)", f"{1000 * check:.2f}",
         f"{check / grpo:.3f}"],
        ["ECR amortised per step", f"{1000 * per_step:.2f}", f"{per_step / grpo:.3f}"],
        ["ECR state JSON round trip (resume)", f"{1000 * round_trip:.1f}", f"{round_trip / grpo:.3f}"],
    ]))
    print(f"ECR state in data.pt: {len(encoded) / 1024:.0f} KiB as JSON")


if __name__ == "__main__":
    main()
