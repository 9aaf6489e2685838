"""Benchmark protocols, scorers, result tables and plots."""
