"""slawatch: a live SLA breach monitor for contact centres.

Everything installs under this one name. The packages the product card names live at the
top of the repository and install as subpackages (``streams/`` is ``slawatch.streams``,
``agents/`` is ``slawatch.agents``, ``schemas/`` is ``slawatch.schemas``); the rest lives
here. docs/ARCHITECTURE.md has the map and the dependency rule.
"""
