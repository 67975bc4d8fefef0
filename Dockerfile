# Builds a small image with the gateway alone. Data lives in the /data volume.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gateway /gateway
COPY --from=build --chown=65532:65532 /out/data /data
ENV GATEWAY_DATA_DIR=/data \
	GATEWAY_NATS_ADDR=0.0.0.0:4222 \
	GATEWAY_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080 4222
USER nonroot:nonroot
ENTRYPOINT ["/gateway"]
