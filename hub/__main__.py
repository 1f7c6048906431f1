"""`python -m hub` runs the smshub command."""

from __future__ import annotations

import sys

from hub.cli import main

sys.exit(main())
