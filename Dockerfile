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
# SIP (UDP+TCP), the admin endpoint, and the RTP range of the example configs.
EXPOSE 5060/udp 5060/tcp 9090/tcp 10000-20000/udp
USER nonroot
ENTRYPOINT ["/usr/local/bin/sipbridge"]
# No arguments runs the embedded default (SIP on 127.0.0.1:5060, simulated
# regions): try it with `docker run --network host sipbridge`. In production
# mount a config that listens on 0.0.0.0 with sip.advertise set, pass the
# keys as environment variables, and run
#   docker run --network host -v $PWD/my.yaml:/etc/sipbridge/my.yaml \
#     -e AZURE_OPENAI_KEY_EASTUS2 sipbridge -config /etc/sipbridge/my.yaml
CMD []
