"""The HTTP upstream carrier: submits through another provider's HTTP API, configured per
`[carriers.NAME]` table (or a ready-made provider template), and takes that provider's
delivery-report and reply callbacks on the hub's HTTP listener (docs/http-upstream.md)."""
