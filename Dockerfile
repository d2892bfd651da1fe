# syntax=docker/dockerfile:1
# The Ferrogate controller image (`make image`): a release build of the `ferrogate` binary on
# distroless/cc (glibc, CA certificates, no shell), running as the nonroot user 65532.
# The same image runs `ferrogate controller` and the `ferrogate certgen` hook Job.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# Shown in the ferrogate_build_info metric.
ARG GIT_COMMIT=""
ENV FERROGATE_GIT_COMMIT=${GIT_COMMIT}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build -p ferrogate --release --locked \
    && install -D -m 0755 target/release/ferrogate /out/ferrogate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ferrogate /usr/local/bin/ferrogate
USER 65532:65532
# xDS, metrics, health.
EXPOSE 18000 19001 8081
ENTRYPOINT ["/usr/local/bin/ferrogate"]
CMD ["controller"]
