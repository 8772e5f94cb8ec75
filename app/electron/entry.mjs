// Electron's entry point: registers the TypeScript loader (as bin/starkv.js does) and starts main.ts.
import { register } from 'tsx/esm/api';

register();
await import('./main.ts');
