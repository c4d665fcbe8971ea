"""Pure frame -> frame analysis (no network, no printing): storage, trends, retention plans and
the bytes a cleanup would reclaim.

``TOTAL`` is the label of the registry-wide row in per-repository frames.
"""

from .storage import TOTAL

__all__ = ["TOTAL"]
