"""``python -m fmstack`` runs the CLI."""

import sys

from fmstack.cli.main import main

sys.exit(main())
