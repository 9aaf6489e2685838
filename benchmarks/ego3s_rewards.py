"""Ego3S reward throughput (responses/s) against verl's built-in math reward, and the cost of pathological strings.

* typical responses (~250 tokens of <think> plus <answer> and <object>), every Video-R1 problem type:
  egoforge's ``compute_score`` without and with the CLIP term (a tiny random CLIP: it measures the embedding
  caches and plumbing, not ViT-L/14 compute) vs verl's ``default_compute_score`` for ``openai/gsm8k``;
* ROUGE-L / WER of two 20k-token strings (bit-parallel) vs the textbook O(n*m) dynamic programme (timed on 2k
  tokens, extrapolated: it grows with n*m);
* responses repeating the tags thousands of times: ``format_matches`` vs the reference ``re.fullmatch``.

    python benchmarks/ego3s_rewards.py [--responses 400]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import table, timeit  # noqa: E402

from egoforge.rewards.answers import IRL_TAGS, format_matches  # noqa: E402
from egoforge.rewards.ego3s import compute_score  # noqa: E402
from egoforge.rewards.text_metrics import lcs_length, mean_rouge_f, word_error_rate  # noqa: E402

WORDS = ["the", "camera", "wearer", "holds", "a", "red", "ball", "near", "cup", "while", "hand", "moves", "left",
         "then", "right", "on", "bench", "squares", "label", "card"]
TYPES = [("multiple choice", "B"), ("numerical", "3"), ("OCR", "fragile glass"),
         ("free-form", "The camera wearer holds a red ball in the top left of the view."), ("regression", "2.5")]


def responses(n: int, rng: random.Random) -> list[tuple[str, str, str]]:
    out = []
    for i in range(n):
        problem_type, truth = TYPES[i % len(TYPES)]
        think = " ".join(rng.choice(WORDS) for _ in range(250))
        answer = truth if rng.random() < 0.5 else rng.choice(WORDS)
        objects = ", ".join(rng.sample(["ball", "hand", "cup", "bench", "knife", "board", "sky"], rng.randint(1, 7)))
        out.append((f"<think>{think}</think>\n<answer>{answer}</answer>\n<object>{objects}</object>",
                    f"<answer>{truth}</answer>", problem_type))
    return out


def _dp_lcs(a, b):
    row = [0] * (len(b) + 1)
    for x in a:
        prev = 0
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], prev + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=400)
    args = parser.parse_args()
    from verl.utils.reward_score import default_compute_score

    from egoforge.rewards.clip import load_clip
    from egoforge.testing.ego3s_data import build_tiny_clip, make_video_r1_dataset

    rng = random.Random(0)
    batch = responses(args.responses, rng)
    gsm8k = [(f"Let me think. {' '.join(rng.choice(WORDS) for _ in range(250))} #### {rng.randint(1, 9)}", "7")
             for _ in range(args.responses)]
    with tempfile.TemporaryDirectory() as tmp:
        clip_dir = build_tiny_clip(Path(tmp) / "clip")
        make_video_r1_dataset(Path(tmp) / "data", n=5)
        rois = sorted(str(p) for p in (Path(tmp) / "data" / "roi").glob("*.jpg"))
        load_clip(clip_dir)  # load once, as a reward worker does
        mean_rouge_f("warm up the stemmer", "warm up")

        def score(irl: bool, clip: bool):
            for i, (text, truth, problem_type) in enumerate(batch):
                info = {"problem_type": problem_type, "roi_path": rois[i % len(rois)]}
                compute_score("ego3s", text, truth, info, irl=irl, clip_model=str(clip_dir) if clip else None)

        def verl_math():
            for text, truth in gsm8k:
                default_compute_score("openai/gsm8k", text, truth)

        rows, base = [], None
        for label, fn in (("verl default_compute_score (openai/gsm8k)", verl_math),
                          ("egoforge Ego3S, plain R1 form (format + accuracy)", lambda: score(False, False)),
                          ("egoforge Ego3S, IRL form with CLIP (tiny random CLIP)", lambda: score(True, True))):
            median, _ = timeit(fn, repeat=3)
            base = base or median
            rows.append([label, f"{len(batch) / median:,.0f}", f"{1e6 * median / len(batch):.0f}",
                         f"{median / base:.2f}"])
    print(f"{len(batch)} responses of ~270 words, the five Video-R1 problem types in turn")
    print(table(["reward", "responses/s", "us/response", "time vs verl math"], rows))

    long_a = " ".join(rng.choice(WORDS) for _ in range(20_000))
    long_b = " ".join(rng.choice(WORDS) for _ in range(20_000))
    fast_rouge, _ = timeit(lambda: mean_rouge_f(long_a, long_b), repeat=3)
    fast_wer, _ = timeit(lambda: word_error_rate(long_a, long_b), repeat=3)
    a2k, b2k = long_a.split()[:2000], long_b.split()[:2000]
    start = time.perf_counter()
    _dp_lcs(a2k, b2k)
    dp_2k = time.perf_counter() - start
    dp_20k = dp_2k * (8192 / 2000) ** 2  # the reward caps at 8192 tokens per side
    bit_2k, _ = timeit(lambda: lcs_length(a2k, b2k), repeat=3)
    # Tags repeated thousands of times; the first is well formed, the second lacks the final junction, which
    # makes the reference's lazy groups retry every </think> and </answer> pair.
    valid = "<think>" + "a </think> " * 5000 + "<answer>B</answer> " * 2000 + "<object>x</object>"
    broken = "<think>" + "a </think> <answer>" * 3000 + "B</answer> x" * 3000 + "<object>x</object>"
    pattern = r"\s*".join(f"<{t}>.*?</{t}>" for t in IRL_TAGS)
    format_rows = []
    for label, text in (("well formed", valid), ("broken", broken)):
        ours, _ = timeit(lambda text=text: format_matches(text, IRL_TAGS), repeat=3)
        start = time.perf_counter()
        reference_ok = bool(re.fullmatch(pattern, text, re.DOTALL))
        reference = time.perf_counter() - start
        assert reference_ok == format_matches(text, IRL_TAGS)
        format_rows.append([f"format check, tags repeated thousands of times ({label})", f"{1000 * ours:.2f} ms",
                            f"{1000 * reference:.0f} ms (re.fullmatch)", f"{reference / ours:.0f}x"])
    print("\npathological responses")
    print(table(["case", "egoforge", "reference", "speed-up"], [
        ["LCS of 2k vs 2k tokens", f"{1000 * bit_2k:.1f} ms", f"{1000 * dp_2k:.0f} ms (DP)", f"{dp_2k / bit_2k:.0f}x"],
        ["ROUGE-1/2/L of 20k vs 20k tokens", f"{1000 * fast_rouge:.0f} ms", f"~{dp_20k:.0f} s (DP, est.)",
         f"~{dp_20k / fast_rouge:.0f}x"],
        ["WER of 20k vs 20k words", f"{1000 * fast_wer:.0f} ms", f"~{dp_20k:.0f} s (DP, est.)",
         f"~{dp_20k / fast_wer:.0f}x"],
        *format_rows,
    ]))


if __name__ == "__main__":
    main()
