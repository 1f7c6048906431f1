"""The kill -9 chaos supervisor (issue #17): load on every ingress, SIGKILL at chosen
moments, restart, then check what the hub promised (tests/chaos/supervisor.py)."""
