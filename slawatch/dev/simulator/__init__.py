"""Realistic contact-centre traffic for demos, tests and benchmarks (``slawatch simulate``)."""

from slawatch.dev.simulator.traffic import SimulatedMessage, TrafficProfile, generate_traffic

__all__ = ["SimulatedMessage", "TrafficProfile", "generate_traffic"]
