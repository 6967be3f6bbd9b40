"""Settings: one typed object read from defaults, a YAML file and the environment."""
