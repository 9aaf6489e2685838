"""EgoAgent data: frame extraction, Ego-Exo4D pose preprocessing, fisheye undistortion, datasets and transforms."""
