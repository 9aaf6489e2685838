"""Reward functions as pure, framework-free functions, with one thin adapter per trainer."""
