"""On-call alerting (issue 10), in progress: the routing file, the pure escalation planner
and what each channel sends (``channels/``: payloads, signatures, e-mail messages). Nothing
here sends anything yet: the notifier and the HTTP and SMTP senders come later."""
