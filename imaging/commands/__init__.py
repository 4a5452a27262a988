"""Sub-commands of the ``chestct`` command line; one module each.

Each module defines ``HELP`` (one line), ``configure(parser)`` adding its arguments,
and ``run(args) -> int``.  Modules must not import torch at top level, so that
``chestct --help`` stays instant.
"""
