// Build pier: the C helper (make -C native) and one bundled CommonJS file per CLI entry point.
// One file means no module graph to resolve at start-up, and CommonJS because Node's ESM loader
// costs several milliseconds more per start than require() — measured; every CLI call pays it.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
execFileSync('make', ['-s', '-C', join(top, 'native')], { stdio: 'inherit' });
mkdirSync(join(top, 'dist'), { recursive: true });
const entries = ['pier-runtime', 'pier', 'pier-shim', 'pier-client'];
const esbuild = await import('esbuild');
await esbuild.build({
  entryPoints: Object.fromEntries(entries.map((e) => [e, join(top, 'src/cli', `${e}.ts`)])),
  outdir: join(top, 'dist'),
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node24',
  sourcemap: 'linked',
  logLevel: 'warning',
  // Sources are ESM and find their files via import.meta.url; give the CommonJS bundle the same.
  define: { 'import.meta.url': '__pierModuleUrl' },
  // pier-client.cjs falls through to pier.cjs at run time.
  external: ['./pier.cjs'],
  banner: { js: "const __pierModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
