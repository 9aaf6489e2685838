"""GRPO through TRL 0.24's GRPOTrainer with egoforge's Ego3S rewards and the ECR curriculum (one GPU, or CPU)."""
