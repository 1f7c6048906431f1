"""SMSCs for tests on 127.0.0.1 port 0: ScriptedSmsc (ours, scripted edge cases) and
Smpp34Smsc (smpp34.Server, an SMSC we did not write)."""
