"""EgoAgent's three evaluations: kNN classification, future-state retrieval, 3D motion prediction (MPJPE)."""
