# syntax=docker/dockerfile:1
# Build stage: full install (esbuild), bundle src/ into dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm ci --no-audit --no-fund

# Runtime stage: production dependencies only, non-root.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    BEARER_PROXY_CONFIG=/config/bearer-proxy.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
RUN mkdir -p /state && chown node:node /state
USER node
# Only the proxy port: the admin port listens on the container's own loopback (see CMD).
EXPOSE 8080
# The HEALTHCHECK runs inside the container, so it reaches the admin port on 127.0.0.1:9901; no curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
# --host 0.0.0.0 inside the container, so a published port reaches the proxy: then anyone who
# reaches that port can use its credentials. Set security.clientKey (e.g. ${env:BEARER_PROXY_CLIENT_KEY});
# without one the start-up log warns. The Host allow-list only stops DNS rebinding from browsers:
# a Host header is the client's choice, no access control.
# The admin port stays on the container's loopback: the HEALTHCHECK needs nothing more. For probes
# or scrapers from outside (Kubernetes httpGet, Prometheus), add `--admin-host 0.0.0.0` and publish
# 9901 only where they run: the admin port has no client key, and anyone who reaches it reads route
# status and metrics and can make the proxy request tokens (/readyz). Keep it on port 9901, or
# replace the HEALTHCHECK. A sidecar sharing the app's network namespace can set listen.host
# 127.0.0.1 in its config and drop --host.
CMD ["serve", "--host", "0.0.0.0"]
