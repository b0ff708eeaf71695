"""Application services: use cases that combine storage, Slack and the renderers."""
