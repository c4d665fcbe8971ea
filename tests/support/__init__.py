"""What the tests run against: real registries with their token server (``registries``), the
rewriting proxy that makes them answer as other registries do (``proxy``) and small fleets of
images pushed through the HTTP API (``fleet``)."""
