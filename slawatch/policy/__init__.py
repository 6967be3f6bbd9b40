"""The SLA policy file format: YAML in, core policy objects out, every error with its line."""
