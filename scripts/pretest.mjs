// Runs before `npm test`: makes sure the dependencies are installed and the native engine is built,
// so that `npm test` alone works on a fresh clone (system packages: scripts/apt-packages.txt).
import { existsSync } from 'node:fs';
import { execSync } from 'node:child_process';

const run = (cmd) => execSync(cmd, { stdio: 'inherit', env: { ELECTRON_SKIP_BINARY_DOWNLOAD: '1', ...process.env } });
if (!existsSync('node_modules/vitest')) run('npm install --no-audit --no-fund');
if (!existsSync('build/Release/starkv.node')) run('npx cmake-js compile --out build');
