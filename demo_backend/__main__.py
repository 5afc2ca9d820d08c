"""`python -m demo_backend --listen HOST:PORT --scale N`: serve the demo legacy backend."""

import sys

from .cli import main

sys.exit(main())
