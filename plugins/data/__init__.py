"""The shared data layer: safe paths, atomic writes, frame loading, dataset schemas and validation."""
