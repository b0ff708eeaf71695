"""incident-bot: a Slack app that runs the incident lifecycle."""
