"""Following ``Link: <url>; rel="next"`` pages (OCI distribution-spec, "Listing Tags" and the
catalog API of Distribution).

The next URL is an opaque cursor: it may be relative or absolute, and must stay on the
registry's host. A cursor seen twice is a loop and stops with an error.
"""

from __future__ import annotations

from urllib.parse import urljoin

from ..errors import InvalidResponse


def next_page(response, seen: set[str]) -> str | None:
    """The absolute next-page URL of ``response`` (``requests``' ``Response.links``), or None.

    Raises
    ------
    InvalidResponse
        When the next URL repeats one already followed (a pagination loop).
    """
    link = response.links.get("next") if hasattr(response, "links") else None
    if not link or not link.get("url"):
        return None
    url = urljoin(response.url, link["url"])
    if url in seen:
        raise InvalidResponse(
            f"pagination loop: the registry sent the same next page twice ({link['url']!r})",
            url=response.url,
        )
    seen.add(url)
    return url
