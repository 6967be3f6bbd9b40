"""Adapters between Kafka and the domain: decode, call the core, send or record."""
