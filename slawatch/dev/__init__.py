"""Development tools: traffic simulator, embedded broker and Redis, demo, benchmarks.

They may use any part of slawatch; nothing in the product uses them.
"""
