"""Entry point for `python -m generation`."""

import sys

from generation.cli import main

sys.exit(main())
