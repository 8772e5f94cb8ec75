// Renders icon.svg to the PNG sizes the Electron builder, the tray and the web page use.
// Run: node assets/icons/generate.mjs
import sharp from 'sharp';
import { readFileSync, copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const svg = readFileSync(path.join(here, 'icon.svg'));
const sizes = [16, 24, 32, 48, 64, 128, 256, 512, 1024];
mkdirSync(path.join(here, 'png'), { recursive: true });
for (const s of sizes) {
  await sharp(svg, { density: Math.max(72, (72 * s) / 512) * 1 }).resize(s, s).png({ compressionLevel: 9 }).toFile(path.join(here, 'png', `${s}x${s}.png`));
}
copyFileSync(path.join(here, 'png', '512x512.png'), path.join(here, 'icon.png'));
copyFileSync(path.join(here, 'png', '32x32.png'), path.join(here, 'tray.png'));
const pub = path.join(here, '..', '..', 'renderer', 'public');
mkdirSync(pub, { recursive: true });
copyFileSync(path.join(here, 'png', '64x64.png'), path.join(pub, 'icon.png'));
console.log(`wrote ${sizes.length} PNGs, icon.png, tray.png and renderer/public/icon.png`);
