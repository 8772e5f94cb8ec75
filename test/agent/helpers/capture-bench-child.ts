// Child process for the capture benchmark: libnut binds one X display per process.
import { benchCapture } from '../../../app/desktop/bench.ts';
import { Desktop } from '../../../app/desktop/desktop.ts';

const d = await Desktop.open({ xDisplay: process.argv[2] });
process.stdout.write(JSON.stringify(await benchCapture(d, 0, Number(process.argv[3] ?? 30))) + '\n');
d.close();
