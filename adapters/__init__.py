"""Protocol edges: one module per protocol, inbound and outbound."""
