# syntax=docker/dockerfile:1
# Multi-stage: compilers and dev dependencies stay in the build stage; the runtime stage holds only
# package.json, production node_modules (with the better-sqlite3 binary built here) and dist/.
# test/container/runtime-smoke.sh replays the runtime stage without a container engine; keep the two in step.

FROM node:24-bookworm-slim AS build
# better-sqlite3 compiles from source when no prebuilt binary matches this Node ABI.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Manifests first, so the dependency layer is reused while only src/ changes.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Pruning keeps the already compiled native module; it does not rebuild it.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
WORKDIR /app
# Copied as root and left read-only to the service user: the process cannot rewrite its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Created and chowned before VOLUME, so a fresh named volume starts out writable by `node` (videos/: stored
# results, the default STORAGE_URL, which replicas may share as a volume of its own).
RUN mkdir -p /data/videos && chown -R node:node /data && chmod 700 /data
VOLUME /data
USER node
EXPOSE 8080
# Liveness only (/healthz); /readyz also depends on the upstream and is for load balancers.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "dist/healthcheck.js"]
# Node runs as PID 1 without an init: main.ts handles SIGTERM/SIGINT itself (drain, then exit 0) and the
# gateway starts no child processes, so there are no zombies to reap. Give `docker stop` more than
# SHUTDOWN_TIMEOUT_MS (25 s) of grace, e.g. `--stop-timeout 30` (docker-compose.yml: stop_grace_period 30s),
# or the drain is cut short by SIGKILL and an accepted job may go unrecorded.
STOPSIGNAL SIGTERM
CMD ["node", "dist/main.js"]
