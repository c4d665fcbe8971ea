"""Where credentials come from (``credentials``), what the registry asks for
(``challenge``: the ``WWW-Authenticate`` grammar) and the bearer tokens it hands out
(``tokens``)."""
