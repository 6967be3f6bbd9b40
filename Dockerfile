# The slawatch worker image: the package with the RocksDB table store, pinned versions.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY slawatch slawatch
COPY schemas schemas
COPY streams streams
COPY agents agents
RUN pip install --no-cache-dir -c constraints.txt '.[rocksdb]'
RUN useradd --system --home /var/lib/slawatch slawatch && mkdir -p /var/lib/slawatch \
    && chown slawatch /var/lib/slawatch
USER slawatch
ENV SLAWATCH_DATA_DIR=/var/lib/slawatch SLAWATCH_WEB_HOST=0.0.0.0 SLAWATCH_STORE=rocksdb://
EXPOSE 6066
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:6066/healthz', timeout=2)" || exit 1
ENTRYPOINT ["slawatch"]
CMD ["worker"]
