"""The ``egoforge`` command-line tools: download, validate, prepare, evaluate, demo, list."""
