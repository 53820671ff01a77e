"""One module per `governor` verb; each defines `register(app)`."""
