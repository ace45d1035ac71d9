# syntax=docker/dockerfile:1
# Build stage: full install (TypeScript), compile to dist/.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
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
EXPOSE 8080 9901
# The admin port answers /healthz on the container's own loopback; no curl needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
# 0.0.0.0 only inside the container, so a published port reaches it; the Host allow-list
# still applies, and a clientKey is advised. A sidecar sharing the app's network
# namespace can set listen.host 127.0.0.1 in its config and drop --host.
CMD ["serve", "--host", "0.0.0.0"]
