# syntax=docker/dockerfile:1
# Switchboard node image: build a static binary, run it on debian slim.
#   docker build -t switchboard .
#   docker run -p 5060:5060/udp -p 5060:5060/tcp -p 8080:8080 switchboard --dev

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# timetzdata embeds the zone database: business hours are read in each
# owner's IANA time zone and the runtime image has no tzdata.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -tags timetzdata -ldflags="-s -w" \
      -o /out/switchboard ./cmd/switchboard

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --no-create-home switchboard \
 && mkdir -p /data && chown switchboard:switchboard /data
COPY --from=build /out/switchboard /usr/local/bin/switchboard
USER switchboard
WORKDIR /data
# Container-friendly defaults; every flag can still override them.
ENV SWITCHBOARD_DATA_DIR=/data \
    SWITCHBOARD_HTTP_ADDR=0.0.0.0:8080
VOLUME /data
# SIP, REST, and actor traffic between nodes when --cluster-addr uses 7000.
# RTP ports follow --rtp-ports.
EXPOSE 5060/udp 5060/tcp 8080/tcp 7000/tcp
# No curl in slim: ask /healthz with bash's /dev/tcp.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
