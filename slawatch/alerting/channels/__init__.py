"""What each channel sends for a :class:`~slawatch.alerting.escalation.Notification`.

Pure functions, one small module per channel: a notification, its receiver, ``now_ms``
and an optional link template (``https://helpdesk.example.com/tickets/{conversation_id}``)
in; exactly the body (and headers) the channel's API expects out. Nothing here sends:
the notifier and the HTTP/SMTP senders come later. Secrets are revealed only where the
API needs them (PagerDuty's ``routing_key`` in the body; the webhook secret only to sign).
"""
