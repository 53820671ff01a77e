"""One router per surface of the server."""
