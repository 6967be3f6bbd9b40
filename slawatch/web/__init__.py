"""The worker's web pages beyond health and metrics: the supervisor wallboard
(``wallboard.py``, page and assets in ``static/``), the centre-wide live view it shows,
shared among workers through Redis (``live.py``), the managers' reports API and page
(``reports.py``) with its OpenAPI document (``openapi.py``), and who may read them all
(``access.py``)."""
