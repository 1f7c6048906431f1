"""The carriers the dispatcher hands messages to: the built-in simulator now, SMPP and HTTP
upstreams next."""
