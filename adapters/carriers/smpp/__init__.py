"""The SMPP 3.4 carrier: binds to an SMSC, submits, and takes receipts and replies."""
