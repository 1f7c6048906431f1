"""Webhooks: events pushed to customers' HTTP endpoints, signed the Standard Webhooks way,
only to addresses that are not the hub's own network."""
