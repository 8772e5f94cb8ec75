// Child process: opens the desktop with whatever DISPLAY it was given and reports the error text.
import { Desktop } from '../../../app/desktop/desktop.ts';

try {
  const d = await Desktop.open();
  d.close();
  process.stdout.write('opened\n');
} catch (e) {
  process.stdout.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exitCode = 3;
}
