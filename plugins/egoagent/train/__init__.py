"""EgoAgent's trainers (stage 1 DINO pretraining, stage 2 joint training) on accelerate."""
