"""The streaming side of slawatch: settings, the Faust app, topics, the worker, the CLI."""
