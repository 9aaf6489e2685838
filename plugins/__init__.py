"""egoforge: egocentric video research on the trainers you already use.

Importing this package is deliberately free of side effects and heavy imports: the LLaMA-Factory start-up hook
imports ``egoforge._startup`` in every Python process of the environment.
"""

__version__ = "0.1.0"
