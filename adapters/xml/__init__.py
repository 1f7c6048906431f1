"""XML over HTTP: the native smshub-1 API and the WinSMS, Clickatell and Kannel dialects,
on one hardened parser."""
