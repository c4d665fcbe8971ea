"""The wire client: OCI distribution-spec v2 over HTTP.

Everything that talks to a registry lives here: names and media types (``names``,
``mediatypes``, ``models``), authentication (``auth``), the send loop (``transport``), the HTTP
cache (``cache``), the verbs (``client``) and OCI image layouts on disk (``layout``). Nothing in
this package imports pandas, matplotlib or ipywidgets (``lint-imports`` checks it).
"""
