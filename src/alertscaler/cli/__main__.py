"""``python -m alertscaler.cli``: the ``alertscaler`` command."""

import sys

from alertscaler.cli.parsing import main

sys.exit(main())
