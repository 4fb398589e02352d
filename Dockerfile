# syntax=docker/dockerfile:1
#
# The eventbridge-partner-operator image: a release build of the operator binary on a
# distroless base that runs as the non-root user 65532.
#
#   docker build -t eventbridge-partner-operator:0.1.0 .
#
# Both base images are pinned by tag. Pin them by digest too (FROM image:tag@sha256:...)
# in the pipeline that publishes the image; the digests are not recorded here because the
# project's own machines cannot reach a container registry to read them.

# The Rust release the project builds and tests with (see rust-version in Cargo.toml for
# the oldest one it supports).
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY . .
# Cargo.lock is committed: --locked fails rather than resolve other versions. The cache
# mounts keep the registry and the target dir between builds of the same builder.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin eventbridge-partner-operator \
    && install -D -m 0755 target/release/eventbridge-partner-operator /out/eventbridge-partner-operator

# glibc and libgcc for the Rust binary, the CA certificates (/etc/ssl/certs) for TLS to
# AWS and the Kubernetes API, tzdata, and no shell or package manager.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/eventbridge-partner-operator /usr/local/bin/eventbridge-partner-operator
USER 65532:65532
# /metrics, /healthz and /readyz (HTTP_ADDR).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/eventbridge-partner-operator"]
CMD ["run"]
