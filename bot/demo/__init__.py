"""`incident-bot demo`: a whole incident played offline against the built-in local Slack.

The real app runs exactly as in production (HTTP mode, signed requests, the real database code);
only Slack is the local stand-in and time is a manual clock the script moves. The transcript is
read back from what the local Slack received, so it shows what really happened, not the script.
"""

from bot.demo.run import run_demo

__all__ = ["run_demo"]
