# bantin in a container: built in one stage, run from a slim image as an unprivileged
# user with its database and feeds on the /data volume.
#   docker build -t bantin .
#   docker run -p 8080:8080 -v bantin-data:/data bantin
# Mount your own configuration over /etc/bantin to scrape other sites.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin bantin \
    && ./target/release/bantin completions bash > bantin.bash \
    && ./target/release/bantin man > bantin.1

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin bantin \
    && mkdir -p /data /etc/bantin \
    && chown bantin:bantin /data
COPY --from=build /src/target/release/bantin /usr/local/bin/bantin
COPY --from=build /src/bantin.bash /usr/share/bash-completion/completions/bantin
COPY --from=build /src/bantin.1 /usr/share/man/man1/bantin.1
COPY config/ /etc/bantin/
# The shipped configuration keeps state next to the repository; here it goes to the
# volume, and the server listens on every interface of the container.
RUN sed -i \
        -e 's|^data_dir = .*|data_dir = "/data"|' \
        -e 's|^feeds_dir = .*|feeds_dir = "/data/feeds"|' \
        -e 's|^listen = .*|listen = "0.0.0.0:8080"|' \
        /etc/bantin/bantin.toml
ENV BANTIN_CONFIG=/etc/bantin/bantin.toml
USER bantin
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
# Docker's default stop timeout (10s) equals `shutdown_timeout`; stop with
# `docker stop -t 20` to let the last publish finish.
STOPSIGNAL SIGTERM
CMD ["bantin", "run"]
