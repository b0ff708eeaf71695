"""Domain: models and use cases. Knows nothing of Slack payloads or SQL."""
