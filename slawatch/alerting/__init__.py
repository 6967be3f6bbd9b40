"""On-call alerting (issue 10), in progress: the routing file and the pure escalation
planner. Nothing here sends anything yet: the notifier and its channels come later."""
