"""``python3 -m registry_insights.cli``: the same as the ``registry-insights`` command."""

import sys

from . import main

sys.exit(main())
