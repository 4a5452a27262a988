"""The ``chestct`` command line: :mod:`imaging.cli.main` and one module per sub-command.

Each sub-command module (``inspect``, ``score``, ``compare``, ``demo``) defines ``HELP``
(one line), ``configure(parser)`` adding its arguments, and ``run(args) -> int``.  Modules
must not import torch at top level, so that ``chestct --help`` stays instant.  The command
line sits on top: it imports every other stage, and none imports it.
"""
