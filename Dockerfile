# syntax=docker/dockerfile:1
#
# The production image of the Recordings service. One image runs every role:
#   recordings serve   the API (the default command below)
#   recordings worker  the ffmpeg workers
#   recordings migrate the database migrations and the bucket (one-shot)
#   recordings accounts / import / gc   operator commands (docker compose run --rm ...)
#
# Only the project and its runtime dependencies are installed: not the `dev` extra (the embedded
# PostgreSQL and S3 servers) and not the `test` extra. ffmpeg is the static build that the
# imageio-ffmpeg wheel ships (with libmp3lame), the binary alone: Debian's ffmpeg would bring about
# 410 MB of desktop libraries (X11, SDL, VA-API, ...) that the service never loads.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: a virtualenv with the project in /opt/venv ------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src

# The runtime dependencies first, read from pyproject.toml alone, so that a change to the code
# does not reinstall them (every one of them ships wheels: no compiler is needed).
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

# Then the project itself: a regular (non-editable) install, no extras. pip and setuptools
# (about 26 MB) go once they have done their work: nothing at run time installs anything.
COPY README.md ./
COPY service ./service
COPY storage ./storage
COPY db ./db
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes --quiet setuptools pip \
    && /opt/venv/bin/recordings --help > /dev/null

# The extension modules' debug symbols go (about 35 MB: uvloop's and asyncpg's most): nothing in
# production reads them, and every node pulls the image. binutils stays in this stage.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends binutils \
    && rm -rf /var/lib/apt/lists/* \
    && find /opt/venv -name '*.so' -exec strip --strip-unneeded {} + \
    && /opt/venv/bin/recordings --help > /dev/null \
    && /opt/venv/bin/python -c "import uvloop, asyncpg, cryptography.hazmat.bindings._rust, httptools"

# --- ffmpeg: the static binary of the imageio-ffmpeg wheel -----------------------------------
# One file linked against glibc alone. The service runs ffmpeg only (no ffprobe): it decodes the
# uploads, encodes MP3 with libmp3lame and computes the peaks.
FROM ${PYTHON_IMAGE} AS ffmpeg

ARG IMAGEIO_FFMPEG_VERSION=0.8.1

RUN python -m venv /tmp/venv \
    && /tmp/venv/bin/pip install --no-cache-dir --target /tmp/wheel \
        "imageio-ffmpeg==${IMAGEIO_FFMPEG_VERSION}" \
    && mv /tmp/wheel/imageio_ffmpeg/binaries/ffmpeg-* /ffmpeg \
    && /ffmpeg -hide_banner -version > /dev/null

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Debian's packages follow the release's security updates, so they are not pinned to a version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

COPY --from=ffmpeg /ffmpeg /usr/bin/ffmpeg

# Proof of the MP3 encoder: a tone encoded with libmp3lame and decoded again, or no image.
RUN ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i sine=frequency=440:sample_rate=8000 \
        -t 1 -ac 1 -c:a libmp3lame -b:a 32k -f mp3 /tmp/tone.mp3 \
    && test "$(head -c 3 /tmp/tone.mp3)" = ID3 \
    && ffmpeg -hide_banner -loglevel error -nostdin -i /tmp/tone.mp3 -f null - \
    && rm /tmp/tone.mp3

RUN groupadd --system --gid 10001 recordings \
    && useradd --system --uid 10001 --gid recordings --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin recordings

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RECORDINGS_FFMPEG=/usr/bin/ffmpeg

# An empty, root-owned working directory: the settings also read a `.env` in the working
# directory, and there is none here (the build context never contains one, see .dockerignore).
# Uploads are spooled to the system temp dir (/tmp) unless RECORDINGS_TMP_DIR says otherwise.
WORKDIR /app

USER 10001:10001

EXPOSE 8000

# Liveness of the API process (the image has no curl). Containers running another command
# (worker, migrate) turn this off in docker-compose.yml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/venv/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# tini as PID 1 reaps orphaned ffmpeg processes and passes SIGTERM on to the command; `recordings
# serve` then shuts uvicorn down gracefully (up to 30 s: give `docker stop` more than that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["recordings", "serve", "--host", "0.0.0.0", "--port", "8000"]
