# Builds the `brevet` binary and runs it as an unprivileged user.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
RUN cargo build --release --locked --bin brevet

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/brevet --create-home brevet
COPY --from=build /src/target/release/brevet /usr/local/bin/brevet
USER brevet
WORKDIR /var/lib/brevet
ENV BREVET_LISTEN=0.0.0.0:8080 \
    BREVET_DATA_DIR=/var/lib/brevet \
    BREVET_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["brevet"]
CMD ["serve"]
