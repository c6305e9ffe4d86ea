# syntax=docker/dockerfile:1
# Build stage: compile wheels with the tools they need; none of them reach the final image.
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install . && pip uninstall --yes pip

# Final stage: the virtual environment only, run as a numeric non-root user.
FROM python:3.12-slim-bookworm
LABEL org.opencontainers.image.title="entra-rbac-operator" \
      org.opencontainers.image.description="Kubernetes RBAC bindings that follow Microsoft Entra ID groups" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["entra-rbac", "run"]
