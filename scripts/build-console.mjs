// Bundles the operator console's front end (console/) into dist/console/web/ (or the folder
// given as the first argument): app.js (Preact, htm, uPlot), app.css, index.html. Part of
// `npm run build`; everything is served from the package, nothing from a CDN.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.resolve(process.argv[2] ?? path.join(root, 'dist', 'console', 'web'));
fs.mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: path.join(root, 'console', 'app.js') },
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'linked',
  outdir: out,
  logLevel: 'warning',
});
await build({ entryPoints: { app: path.join(root, 'console', 'app.css') }, bundle: true, minify: true, outdir: out, logLevel: 'warning' });
fs.copyFileSync(path.join(root, 'console', 'index.html'), path.join(out, 'index.html'));
