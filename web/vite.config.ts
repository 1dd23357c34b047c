import { defineConfig } from 'vitest/config';

// The Rust server listens here in development (`hearth serve`).
const backend = 'http://127.0.0.1:8080';
const proxied = ['/api', '/health', '/ready', '/metrics', '/docs', '/openapi.json'];

export default defineConfig({
  // No React plugin: esbuild compiles JSX with the automatic runtime.
  esbuild: {
    jsx: 'automatic',
    jsxImportSource: 'react',
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    proxy: Object.fromEntries(proxied.map((prefix) => [prefix, { target: backend, changeOrigin: false }])),
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
