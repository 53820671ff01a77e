"""The governor server (FastAPI)."""
