"""CLI verbs, one module per topic; each defines `register(app)`. cli.py imports them all."""
