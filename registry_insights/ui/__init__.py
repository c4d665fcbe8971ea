"""What people look at in a notebook: matplotlib plots (``plots``) and the ``TagBrowser``
ipywidget (``widgets``), a view over its headless state (``selection``: ``TagSelection``)."""
