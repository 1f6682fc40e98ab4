# Builds the `brevet` binary and runs it as an unprivileged user. docker-compose.yml shows a whole
# deployment; tests/it/compose.rs runs each of its services' commands with this image's
# environment against the built binary, and checks that every target Cargo.toml declares is
# copied here.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY build.rs ./
COPY benches ./benches
RUN cargo build --release --locked --bin brevet

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/brevet --create-home brevet \
    && install -d -o brevet -g brevet -m 0700 /var/lib/brevet/keys
COPY --from=build /src/target/release/brevet /usr/local/bin/brevet
USER brevet
WORKDIR /var/lib/brevet
# The Wallet API on 8080 for Google (through your TLS front end, or with BREVET_TLS__* set);
# the admin API and health/metrics on ports of their own, since staff and the platform must not
# share Google's listener.
ENV BREVET_LISTEN=0.0.0.0:8080 \
    BREVET_HTTP__ADMIN_LISTEN=0.0.0.0:9080 \
    BREVET_HTTP__OPS_LISTEN=0.0.0.0:9090 \
    BREVET_WORKER__OPS_LISTEN=0.0.0.0:9091 \
    BREVET_DATA_DIR=/var/lib/brevet \
    BREVET_LOG_FORMAT=json
EXPOSE 8080 9080 9090 9091
ENTRYPOINT ["brevet"]
CMD ["serve"]
