"""Published numbers from the seeds (../shared/seeds/papers.md), to print beside a user's results."""

from __future__ import annotations

# EgoCross, Qwen3-VL-4B, CloseQA accuracy (%) per domain; papers.md §1.4. "Overall" in the seed README is the
# macro average of the four domains for Baseline and 2 epochs (45.65 / 46.59); micro values are over 957 questions.
EGOCROSS_ROWS = {
    "Baseline (zero-shot)": {"Surgery": 48.41, "Industry": 34.29, "XSports": 44.72, "Animal": 55.19,
                             "micro": 45.14, "macro": 45.65},
    "Full SFT 1 ep": {"Surgery": 46.29, "Industry": 36.33, "XSports": 48.37, "Animal": 55.19,
                      "micro": 45.98, "macro": 46.55},
    "Full SFT 2 ep": {"Surgery": 47.70, "Industry": 35.10, "XSports": 48.37, "Animal": 55.19,
                      "micro": 46.08, "macro": 46.59},
}
# Per-domain (correct, total) behind "Full SFT 2 ep": 135/283, 86/245, 119/246, 101/183 (441/957).
EGOCROSS_SFT2_COUNTS = {"Surgery": (135, 283), "Industry": (86, 245), "XSports": (119, 246), "Animal": (101, 183)}
