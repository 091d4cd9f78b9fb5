"""Kestra's notifications plugin (`io.kestra.plugin.notifications.*`): chat webhooks (Slack, Discord, Microsoft Teams,
Google Chat, Telegram, Zulip, Mattermost), their `*Execution` summaries, and email over SMTP.

Importing it registers the types and imports nothing heavy: httpx, smtplib and ssl are imported when a task sends.
"""

from kestractl.plugins.notifications import chats, mail, slack, telegram

__all__ = ["chats", "mail", "slack", "telegram"]
