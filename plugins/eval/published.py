"""Published numbers of the EgoCross and Ego3S papers and repositories, to print beside a user's results."""

from __future__ import annotations

# EgoCross, Qwen3-VL-4B, CloseQA accuracy (%) per domain (LiYu0524/EgoCross_SFT_qwen3vl4b README); its "Overall" is the
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

# Ego3S, Qwen2.5-VL-7B, accuracy (%) per benchmark and training time (h) (fig/results.png of the
# official repository). "Full (12k, GRPO)" and "GRPO" are the same run listed twice in the figure.
EGO3S_BENCHMARKS = ("EgoPlan2", "QAEgo4D", "EgoTextVQA", "EgoSchema", "EgoThink")
EGO3S_ROWS = {
    "Full (12k, GRPO)": {"Time(h)": 60.5, "EgoPlan2": 30.43, "QAEgo4D": 63.80, "EgoTextVQA": 20.30,
                         "EgoSchema": 47.60, "EgoThink": 56.57},
    "s1": {"Time(h)": 52.3, "EgoPlan2": 29.97, "QAEgo4D": 64.40, "EgoTextVQA": 19.80, "EgoSchema": 47.90,
           "EgoThink": 56.32},
    "LIMO": {"Time(h)": 53.7, "EgoPlan2": 30.59, "QAEgo4D": 64.20, "EgoTextVQA": 20.20, "EgoSchema": 47.40,
             "EgoThink": 56.27},
    "LIMR": {"Time(h)": 103.2, "EgoPlan2": 31.46, "QAEgo4D": 65.20, "EgoTextVQA": 20.60, "EgoSchema": 48.20,
             "EgoThink": 56.93},
    "CSM only": {"Time(h)": 29.7, "EgoPlan2": 33.76, "QAEgo4D": 65.80, "EgoTextVQA": 21.40, "EgoSchema": 48.60,
                 "EgoThink": 57.23},
    "GRPO": {"Time(h)": 60.5, "EgoPlan2": 30.43, "QAEgo4D": 63.80, "EgoTextVQA": 20.30, "EgoSchema": 47.60,
             "EgoThink": 56.57},
    "RLOO": {"Time(h)": 70.8, "EgoPlan2": 30.19, "QAEgo4D": 63.20, "EgoTextVQA": 19.40, "EgoSchema": 46.90,
             "EgoThink": 55.49},
    "DAPO": {"Time(h)": 62.4, "EgoPlan2": 30.87, "QAEgo4D": 64.60, "EgoTextVQA": 20.60, "EgoSchema": 47.40,
             "EgoThink": 57.24},
    "IRL only": {"Time(h)": 62.1, "EgoPlan2": 35.42, "QAEgo4D": 66.40, "EgoTextVQA": 21.80, "EgoSchema": 48.80,
                 "EgoThink": 58.22},
    "Ego3S (CSM+IRL+ECR)": {"Time(h)": 32.6, "EgoPlan2": 36.83, "QAEgo4D": 66.80, "EgoTextVQA": 22.40,
                            "EgoSchema": 49.20, "EgoThink": 58.71},
}
# The rows the benchmark suite prints beside a user's model: the GRPO baseline, each stage alone, the full method.
EGO3S_SUITE_ROWS = ("Full (12k, GRPO)", "CSM only", "IRL only", "Ego3S (CSM+IRL+ECR)")
