"""Slack listeners, one module per surface. Thin: parse, call a service, render."""
