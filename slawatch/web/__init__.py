"""The worker's web pages beyond health and metrics: the supervisor wallboard
(``wallboard.py``, page and assets in ``static/``), the centre-wide live view it shows,
shared among workers through Redis (``live.py``), the managers' reports API and page
(``reports.py``) with its OpenAPI document (``openapi.py``), who may read them all
(``access.py``), and the HTTP ingest webhooks post events to (``ingest.py``, its
credentials in ``ingest_auth.py``)."""
