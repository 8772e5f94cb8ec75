// XTEST fake input and the core keyboard-mapping requests, on top of XConnection.
import type { XConnection } from './connection.ts';

export const KEY_PRESS = 2;
export const KEY_RELEASE = 3;
export const BUTTON_PRESS = 4;
export const BUTTON_RELEASE = 5;
export const MOTION = 6;

export interface KeyboardMapping {
  minKeycode: number;
  perKeycode: number;
  /** keysyms[k - minKeycode][level]; 0 is NoSymbol. */
  keysyms: number[][];
}

export class XTest {
  private constructor(
    readonly conn: XConnection,
    private readonly opcode: number,
  ) {}

  static async open(conn: XConnection): Promise<XTest> {
    const ext = await conn.queryExtension('XTEST');
    if (!ext.present) throw new Error('the X server has no XTEST extension, so input cannot be injected');
    const body = Buffer.alloc(4);
    body[0] = 2; // client major version
    body.writeUInt16LE(2, 2); // minor
    await conn.send(ext.majorOpcode, 0, body, true); // GetVersion
    return new XTest(conn, ext.majorOpcode);
  }

  /** XTestFakeInput: type is KEY_PRESS..MOTION; detail is the keycode or button. */
  fake(type: number, detail: number, x = 0, y = 0): void {
    const b = Buffer.alloc(32);
    b[0] = type;
    b[1] = detail;
    b.writeUInt32LE(0, 4); // CurrentTime
    b.writeUInt32LE(type === MOTION ? this.conn.screen.root : 0, 8);
    b.writeInt16LE(x, 20);
    b.writeInt16LE(y, 22);
    this.conn.send(this.opcode, 2, b);
  }

  async keyboardMapping(): Promise<KeyboardMapping> {
    const { minKeycode, maxKeycode } = this.conn.setup;
    const count = maxKeycode - minKeycode + 1;
    const body = Buffer.from([minKeycode, count, 0, 0]);
    const r = await this.conn.send(101, 0, body, true);
    const per = r[1]!;
    const keysyms: number[][] = [];
    for (let k = 0; k < count; k++) {
      const row: number[] = [];
      for (let l = 0; l < per; l++) row.push(r.readUInt32LE(32 + 4 * (k * per + l)));
      keysyms.push(row);
    }
    return { minKeycode, perKeycode: per, keysyms };
  }

  /** ChangeKeyboardMapping of `rows.length` consecutive keycodes starting at `first`. */
  changeMapping(first: number, perKeycode: number, rows: number[][]): void {
    const body = Buffer.alloc(4 + 4 * perKeycode * rows.length);
    body[0] = first;
    body[1] = perKeycode;
    rows.forEach((row, i) => {
      for (let l = 0; l < perKeycode; l++) body.writeUInt32LE(row[l] ?? 0, 4 + 4 * (i * perKeycode + l));
    });
    this.conn.send(100, rows.length, body);
  }

  /** Keycodes bound to each of the 8 modifiers (Shift, Lock, Control, Mod1..Mod5). */
  async modifierMapping(): Promise<number[][]> {
    const r = await this.conn.send(119, 0, Buffer.alloc(0), true);
    const n = r[1]!;
    const mods: number[][] = [];
    for (let m = 0; m < 8; m++) mods.push([...r.subarray(32 + m * n, 32 + (m + 1) * n)].filter((k) => k !== 0));
    return mods;
  }

  /** QueryPointer on the root window: position and the key/button mask (bit 1 = Lock, 0x100.. = buttons). */
  async pointer(): Promise<{ x: number; y: number; mask: number }> {
    const body = Buffer.alloc(4);
    body.writeUInt32LE(this.conn.screen.root, 0);
    const r = await this.conn.send(38, 0, body, true);
    return { x: r.readInt16LE(16), y: r.readInt16LE(18), mask: r.readUInt16LE(24) };
  }
}
