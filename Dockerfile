# CRM Pulse worker and simulator image (docker-compose.yml runs both from it).
FROM python:3.11.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# README.md is the package readme named in pyproject.toml (and CHANGELOG.md rides along)
COPY pyproject.toml *.md ./
COPY streams ./streams
RUN pip install .
COPY rules ./rules
RUN useradd --system --uid 10001 --home-dir /app pulse && mkdir -p /app/.crm-pulse \
    && chown -R pulse /app/.crm-pulse
USER pulse
EXPOSE 6066
ENTRYPOINT ["crm-pulse"]
CMD ["worker"]
