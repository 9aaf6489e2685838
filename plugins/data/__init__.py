"""The media layer every pipeline reads through: video (the only PyAV code), frames, json IO, predictions, safe
paths, atomic writes, dataset schemas and validation."""
