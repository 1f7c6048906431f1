"""Formats of other vendors' APIs that several transports carry: one parser each, shared by
every transport."""
