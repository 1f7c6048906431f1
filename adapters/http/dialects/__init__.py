"""The HTTP GET/POST dialects existing clients send (WinSMS, Clickatell, Kannel), at the
originals' paths and in their words; routing.py mounts them beside their XML forms."""
