"""verl integration: the Ego3S reward manager, the ECR dataset class and trainer, and the `verl.plugins` entry point.

Importing this package is cheap; the submodules that touch verl are imported only where they are used.
"""
