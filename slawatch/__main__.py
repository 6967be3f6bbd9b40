"""``python -m slawatch``: the same command line as the ``slawatch`` script."""

import sys

from slawatch.cli.main import main

sys.exit(main())
