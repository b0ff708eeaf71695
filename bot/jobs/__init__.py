"""Periodic work: the reminder sweep, driven by APScheduler."""
