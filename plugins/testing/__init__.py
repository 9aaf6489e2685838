"""Offline fixtures: tiny random Qwen-VL checkpoints and generated egocentric data in the real formats."""
