"""The `governor` command line."""
