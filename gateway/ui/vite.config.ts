import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Built into dist/, which the gateway serves at / and /assets/ (gateway/static.py).
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, assetsDir: "assets", sourcemap: false },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", ws: true } } },
});
