"""pandas frames of what a registry holds: one declared schema per frame (``schema``) and the
walk that fills them (``inventory``)."""
