"""The ``slawatch`` command line."""
