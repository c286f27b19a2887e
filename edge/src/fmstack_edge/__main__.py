import sys

from fmstack_edge.cli import main

sys.exit(main())
