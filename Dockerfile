# Wenming bot image: multi-stage, non-root, migrations on start.
#   docker build -t wenming .
#   docker run --env-file .env -v wenming-data:/data wenming
# The city configuration ships inside the package (bot/defaults/); a city's own reporting.yaml
# or schedule.yaml goes in a mounted directory named by WENMING_CONFIG_DIR:
#   docker run ... -v ./my-city:/config:ro -e WENMING_CONFIG_DIR=/config wenming
# tests/e2e/test_installed_package.py builds and installs the wheel the same way and runs it.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/wenming
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY web web
COPY standards standards
COPY scheduler scheduler
COPY db db
COPY sandbox sandbox
RUN /opt/wenming/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/wenming/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
# A CJK font for the before/after images and the weekly bulletins; tini reaps and forwards signals.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 wenming \
 && mkdir -p /data && chown wenming:wenming /data
COPY --from=build /opt/wenming /opt/wenming
WORKDIR /data
ENV PATH=/opt/wenming/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/wenming.db \
    WENMING_MEDIA_DIR=/data/media \
    WENMING_HTTP_LISTEN=0.0.0.0:8080
EXPOSE 8080
USER wenming
VOLUME ["/data"]
ENTRYPOINT ["tini", "--"]
# `wenming run` applies migrations itself before polling; doing it first makes a failed
# migration stop the container before it talks to Telegram.
CMD ["sh", "-c", "wenming db upgrade && exec wenming run"]
