/** Entry point of `pier-shim`, the per-container monitor pierd spawns (src/engine/shim). */
import { shimMain } from '../engine/shim/main.ts';

void shimMain(process.argv.slice(2));
