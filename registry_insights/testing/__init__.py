"""Test and demo tooling, out of the runtime path: a real CNCF Distribution registry on loopback
(``server``) and the synthetic demo fleet pushed into it (``demo``)."""
