"""A local, stateful fake Slack for end-to-end tests and the offline demo."""

from .local_slack import LocalSlack
from .types import Call, Delivery, SlackError

__all__ = ["Call", "Delivery", "LocalSlack", "SlackError"]
