# syntax=docker/dockerfile:1
# sipbridge: SIP trunk endpoint for gpt-realtime with cross-region failover.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/sipbridge ./cmd/sipbridge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sipbridge /usr/local/bin/sipbridge
COPY configs/*.yaml /etc/sipbridge/
# The bundled prompts: configs name them relative to this directory
# (failover.filler_file: prompts/one-moment.wav).
COPY prompts/*.wav /etc/sipbridge/prompts/
WORKDIR /etc/sipbridge
# SIP on UDP and TCP (sip.listen of every example config), the admin
# endpoint (admin.listen), and RTP: 10000-20999 holds the rtp.port_min-port_max
# range of every example config (a test checks).
EXPOSE 5060/udp 5060/tcp 9090/tcp 10000-20999/udp
USER nonroot
# /livez: the process serves (a full or draining instance is healthy, not
# broken). If admin.listen moves, pass -e SIPBRIDGE_ADMIN=HOST:PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/sipbridge", "health"]
# docker stop sends SIGTERM: sipbridge drains for up to drain_timeout (5m);
# give it that long: docker stop -t 330 (or stop_grace_period in compose).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/sipbridge"]
# No arguments runs the embedded default (SIP on 127.0.0.1:5060, simulated
# regions): try it with `docker run --network host sipbridge`, then
# `docker exec CONTAINER sipbridge call sip:bot@127.0.0.1`. In production
# mount a config that listens on 0.0.0.0 with sip.advertise set, pass the
# keys as environment variables, and run
#   docker run --network host -v $PWD/my.yaml:/etc/sipbridge/my.yaml \
#     -e AZURE_OPENAI_KEY_EASTUS2 sipbridge -config /etc/sipbridge/my.yaml
CMD []
