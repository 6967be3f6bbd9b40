"""The SLA log schema's revisions, oldest first: ``rNNNN_<what>.py``."""
