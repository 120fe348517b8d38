"""``python -m userplane_async``: the same CLI as ``userplane-async``."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
