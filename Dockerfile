# One image with every binary: the CronJob jobs (ttl-teardown, certificate-checker), the
# ttl-snooze service and the whitelist CLI. The chart picks the binary with `command`.
# Not built in CI (no container engine there); hadolint checks this file (tests/chart).
#
#   docker build -t governance-jobs:dev .

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Build zlib (librdkafka's compression) into the binaries instead of linking the system's: the
# runtime image has no libz.
ENV LIBZ_SYS_STATIC=1 \
    CARGO_TERM_COLOR=never
COPY . .
RUN cargo build --release --locked --workspace --bins \
    && mkdir -p /out \
    && cp target/release/ttl-teardown target/release/ttl-snooze \
          target/release/certificate-checker target/release/secret-rotation \
          target/release/usage-reporting target/release/whitelist \
          target/release/governance-jobs /out/

# distroless/cc: glibc, libgcc, libssl3 (for rdkafka built with its `ssl` feature) and
# ca-certificates; no shell, no package manager. `nonroot` runs as 65532:65532, the UID the
# chart's securityContext expects.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
# No ENTRYPOINT: every workload names its binary (`ttl-teardown --config …`).
CMD ["ttl-teardown", "--help"]
