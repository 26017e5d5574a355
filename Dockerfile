# syntax=docker/dockerfile:1
#
# The Muster image: `muster serve` on port 8080, data in the /data volume, as a non-root user.
#
#   docker build --build-arg MUSTER_COMMIT=$(git rev-parse --short HEAD) -t muster .
#   docker run -d --name muster -p 8080:8080 -v muster-data:/data muster
#   docker exec muster muster token create --name entra --scope scim.write
#
# HTTPS: mount the certificate files and add `--tls-cert /tls/fullchain.pem --tls-key
# /tls/privkey.pem` to the command (README, "Deploy"). scripts/docker-smoke.sh builds and tests it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# The build needs only the workspace (.dockerignore keeps the rest out, .git included).
COPY Cargo.toml Cargo.lock ./
COPY crates crates
# `muster --version` names the commit; without .git in the context it comes from here.
ARG MUSTER_COMMIT=unknown
ENV MUSTER_COMMIT=${MUSTER_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p muster-cli --bin muster \
    && install -D -m 0755 target/release/muster /out/muster

FROM debian:${DEBIAN_RELEASE}-slim
# ca-certificates: targets (Genesys Cloud, NICE CXone, Five9) and PostgreSQL over TLS are
# verified against the system's CAs. curl: the health check.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 muster \
    && useradd --system --uid 10001 --gid muster --home-dir /data --shell /usr/sbin/nologin muster \
    && install -d -o muster -g muster -m 0700 /data
COPY --from=builder /out/muster /usr/local/bin/muster
# The CLI in `docker exec` finds the same data as the server.
ENV MUSTER_DATA_DIR=/data
VOLUME ["/data"]
USER 10001:10001
WORKDIR /data
EXPOSE 8080
# Plain HTTP, or HTTPS when serve was given a certificate (not verified: it is the server's own).
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz \
        || curl -fsSk -o /dev/null https://127.0.0.1:8080/healthz \
        || exit 1
ENTRYPOINT ["muster"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/data"]
