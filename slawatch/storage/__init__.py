"""Stored state: how a conversation's SLA state is written to and read from the table."""
