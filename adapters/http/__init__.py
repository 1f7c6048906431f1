"""The HTTP listener: the Starlette application and its body limits, the server, and the
JSON REST API."""
