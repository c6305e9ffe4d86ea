# syntax=docker/dockerfile:1
# The operator's image: `docker build -t entra-rbac-operator .` (hack/e2e-kind.sh does it for kind).
# Both stages use the same base so the virtual environment's interpreter path exists in the final one.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Build stage: install the project and its runtime dependencies into a virtual environment.
# Everything used only to build (pip, wheels' build backends, caches) stays in this stage.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY operator/ operator/
# Byte-code is compiled here (pip's default) because the root filesystem is read-only at run time.
RUN /opt/venv/bin/pip install . \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/venv/bin/entra-rbac --version

# Final stage: the virtual environment only, no package manager, run as a numeric non-root user
# (numeric so that Kubernetes' runAsNonRoot can verify it without /etc/passwd).
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="entra-rbac-operator" \
      org.opencontainers.image.description="Kubernetes RBAC bindings that follow Microsoft Entra ID groups" \
      org.opencontainers.image.licenses="Apache-2.0"
# The base image's own pip is not needed to run and is one less tool for an intruder.
RUN PIP_ROOT_USER_ACTION=ignore python -m pip uninstall --yes pip
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
USER 65532:65532
# 8080: Prometheus metrics; 8081: kopf's liveness endpoint (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["entra-rbac", "run"]
