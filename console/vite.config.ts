import { defineConfig } from "vite";

// Served by the facegate binary at /console with a CSP that allows no inline script or style: every
// asset is a file of its own (no inlined data URLs, no module-preload polyfill script).
export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  oxc: { jsx: { runtime: "automatic" } },
});
