# Build stage: compile the release binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY benches ./benches
RUN cargo build --release --locked --bin tokenkeeper

# Runtime stage: a small image with a non-root user and a /data volume.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data tokenkeeper \
    && mkdir -p /data && chown tokenkeeper /data
COPY --from=build /src/target/release/tokenkeeper /usr/local/bin/tokenkeeper
COPY config /etc/tokenkeeper
USER tokenkeeper
WORKDIR /data
VOLUME ["/data"]
ENV TOKENKEEPER__SERVER__ADDR=0.0.0.0:8080 \
    TOKENKEEPER__STORE__DATA_DIR=/data \
    TOKENKEEPER__LOGGING__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["tokenkeeper"]
CMD ["serve"]
