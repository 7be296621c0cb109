/** Entry point of `pier-runtime`. */
import { runtimeMain } from './runtime/main.ts';

void runtimeMain(process.argv.slice(2)).then((code) => { process.exitCode = code; });
