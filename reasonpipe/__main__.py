"""``python -m reasonpipe`` runs the CLI (same as the ``reasonpipe`` command).

Example::

    python -m reasonpipe verify cd.jsonl
"""

import sys

from reasonpipe.cli import main

sys.exit(main())
