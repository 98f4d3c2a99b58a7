# Images of docker-compose.yml (targets `temporal` and `batchline`; `docker build .` gives batchline). Not built on
# the project's machines, which have no Docker engine: test/unit/compose.test.ts checks what can be checked without
# one (the compose file, the versions below), so this file is kept plain.
#
# Before building: scripts/fetch-embedding-model.sh (or `npm start` once), so models/all-minilm-l6-v2/1 holds the
# embedding model, which is too large to commit; without it the image serves the other models only.

# ---- The Temporal server, its schema tool and CLI, built from source as scripts/temporal-server.mjs builds them for
# `batchline cluster`, so both run the same server. docker-compose.yml passes the versions the scripts pin.
FROM golang:1.25-bookworm AS temporal-build
ARG TEMPORAL_SERVER_VERSION=1.29.1
ARG TEMPORAL_CLI_VERSION=1.5.1
ENV CGO_ENABLED=0 GOBIN=/out
RUN go install -ldflags='-s -w' "go.temporal.io/server/cmd/server@v${TEMPORAL_SERVER_VERSION}" \
 && go install -ldflags='-s -w' "go.temporal.io/server/cmd/tools/sql@v${TEMPORAL_SERVER_VERSION}" \
 && go install -ldflags="-s -w -X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}" \
      "github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}" \
 && mv /out/server /out/temporal-server \
 && mv /out/sql /out/temporal-sql-tool \
 && mkdir -p /schema \
 && cp -r "$(go env GOMODCACHE)/go.temporal.io/server@v${TEMPORAL_SERVER_VERSION}/schema/postgresql" /schema/

# ---- temporal: the server (`temporal-server`), the schema tool (`temporal-sql-tool`, schema files where the official
# admin-tools image keeps them) and the CLI (`temporal`, the health check); `hostname -i` gives the server the address
# it broadcasts. WORKDIR holds deploy/temporal: the server config template and the dynamic config (`npm run compose`).
FROM debian:bookworm-slim AS temporal
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata hostname \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 1000 --no-create-home temporal
COPY --from=temporal-build /out/ /usr/local/bin/
COPY --from=temporal-build /schema/postgresql /etc/temporal/schema/postgresql
WORKDIR /app
COPY deploy/temporal deploy/temporal
USER temporal
EXPOSE 7233

# ---- batchline: build with every dependency, then keep the production ones.
FROM node:20-bookworm-slim AS batchline-build
# For native add-ons (better-sqlite3) when no prebuilt binary can be downloaded.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- batchline: the worker, the API and `batchline temporal-setup` (docker-compose.yml gives the command).
FROM node:20-bookworm-slim AS batchline
ENV NODE_ENV=production
WORKDIR /app
COPY --from=batchline-build /app/package.json ./
COPY --from=batchline-build /app/node_modules node_modules
COPY --from=batchline-build /app/dist dist
COPY bin bin
COPY ui ui
COPY models models
# DATA_DIR: the container's own state (nothing shared lives there; the item store is on PostgreSQL).
RUN mkdir data && chown node:node data
USER node
EXPOSE 3000 9464
CMD ["node", "bin/batchline.mjs", "api"]
