// Screenshots of live sessions, held once in memory and served by reference (/blob/<id>), bounded by
// bytes: the oldest go first. Trajectories on disk are served from the episode folders instead.
import { randomBytes } from 'node:crypto';

export interface Blob {
  data: Buffer;
  type: string;
}

export class BlobStore {
  private readonly blobs = new Map<string, Blob>();
  private bytes = 0;

  constructor(private readonly maxBytes = 512 * 1024 * 1024) {}

  /** Stores data; returns an id safe to put in a URL path. */
  put(data: Buffer, type = 'image/png', hint = 'shot'): string {
    const id = `${hint.replace(/[^\w-]/g, '').slice(0, 40)}-${randomBytes(6).toString('hex')}`;
    this.blobs.set(id, { data, type });
    this.bytes += data.length;
    for (const [k, v] of this.blobs) {
      if (this.bytes <= this.maxBytes || k === id) break;
      this.blobs.delete(k);
      this.bytes -= v.data.length;
    }
    return id;
  }

  get(id: string): Blob | undefined {
    return this.blobs.get(id);
  }

  get size(): number {
    return this.bytes;
  }
}
