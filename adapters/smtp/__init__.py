"""Email in and out: the SMTP listener that turns mail to <number>@<domain> into SMS, its
authentication and sender rules, and the receipts and replies mailed back."""
