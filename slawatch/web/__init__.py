"""The worker's web pages beyond health and metrics: the supervisor wallboard
(``wallboard.py``, page and assets in ``static/``), the centre-wide live view it shows,
shared among workers through Redis (``live.py``), and who may read them (``access.py``)."""
