// Child process for the durability test: appends records and screenshots as fast as it can until killed.
import { EpisodeWriter } from '../../../app/store/trajectory.ts';

const w = EpisodeWriter.create(process.argv[2]!, 'durability test');
process.stdout.write(w.dir + '\n');
const png = Buffer.alloc(200_000, 7);
for (let i = 1; ; i++) {
  w.writeFile(`step-${String(i).padStart(4, '0')}.png`, png);
  w.append('observation', { step: i, file: `step-${String(i).padStart(4, '0')}.png`, pad: 'x'.repeat(5000) });
  w.append('reply', { step: i, text: `Thought: ${i}\nAction: wait()` });
}
