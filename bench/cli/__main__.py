"""``python -m bench.cli``, as ``bench``."""

import sys

from bench.cli import main

sys.exit(main())
