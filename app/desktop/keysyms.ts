// Key names (as UI-TARS writes them in hotkey(key='ctrl shift t')) and characters -> X keysyms.

const NAMED: Record<string, number> = {
  ctrl: 0xffe3, control: 0xffe3, lctrl: 0xffe3, rctrl: 0xffe4,
  shift: 0xffe1, lshift: 0xffe1, rshift: 0xffe2,
  alt: 0xffe9, lalt: 0xffe9, ralt: 0xffea, option: 0xffe9, altgr: 0xfe03,
  super: 0xffeb, win: 0xffeb, windows: 0xffeb, meta: 0xffeb, cmd: 0xffeb, command: 0xffeb, os: 0xffeb,
  enter: 0xff0d, return: 0xff0d, kp_enter: 0xff8d,
  esc: 0xff1b, escape: 0xff1b,
  tab: 0xff09, space: 0x20, spacebar: 0x20,
  backspace: 0xff08, back: 0xff08,
  delete: 0xffff, del: 0xffff, insert: 0xff63, ins: 0xff63,
  home: 0xff50, end: 0xff57,
  pageup: 0xff55, page_up: 0xff55, pgup: 0xff55, prior: 0xff55,
  pagedown: 0xff56, page_down: 0xff56, pgdn: 0xff56, next: 0xff56,
  up: 0xff52, down: 0xff54, left: 0xff51, right: 0xff53,
  arrowup: 0xff52, arrowdown: 0xff54, arrowleft: 0xff51, arrowright: 0xff53,
  capslock: 0xffe5, numlock: 0xff7f, scrolllock: 0xff14,
  printscreen: 0xff61, print: 0xff61, prtsc: 0xff61, pause: 0xff13, menu: 0xff67, apps: 0xff67,
  plus: 0x2b, minus: 0x2d, equal: 0x3d, comma: 0x2c, period: 0x2e, slash: 0x2f, backslash: 0x5c,
  semicolon: 0x3b, quote: 0x27, apostrophe: 0x27, grave: 0x60, backquote: 0x60,
  bracketleft: 0x5b, bracketright: 0x5d,
};

const MODIFIERS = new Set([0xffe1, 0xffe2, 0xffe3, 0xffe4, 0xffe9, 0xffea, 0xffeb, 0xffec, 0xfe03]);

export function isModifierKeysym(ks: number): boolean {
  return MODIFIERS.has(ks);
}

/** The keysym that produces code point `cp` (Latin-1 keysyms equal the code point; others are 0x01000000 + cp). */
export function charToKeysym(cp: number): number {
  if (cp === 0x0a || cp === 0x0d) return 0xff0d; // Return
  if (cp === 0x09) return 0xff09; // Tab
  if (cp === 0x08) return 0xff08; // BackSpace
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return 0x01000000 + cp;
}

/** One key name of a hotkey ("ctrl", "F5", "a", "pagedown", "ArrowUp") -> keysym, or null if unknown. */
export function keyNameToKeysym(name: string): number | null {
  const raw = name.trim();
  if (!raw) return null;
  const k = raw.toLowerCase();
  if (k in NAMED) return NAMED[k]!;
  const f = /^f(\d{1,2})$/.exec(k);
  if (f && Number(f[1]) >= 1 && Number(f[1]) <= 35) return 0xffbe + Number(f[1]) - 1;
  const cps = [...raw];
  if (cps.length === 1) {
    // Letters are sent as their lowercase key: "ctrl A" is ctrl+a, not ctrl+shift+a.
    return charToKeysym(cps[0]!.toLowerCase().codePointAt(0)!);
  }
  return null;
}

/** Splits a UI-TARS hotkey string ("ctrl shift t", "ctrl+c", "Alt-F4") into keysyms; throws on unknown names. */
export function parseHotkey(spec: string): number[] {
  const parts = spec.trim().split(/\s+|(?<=\w)[+](?=\w)|(?<=\w)-(?=\w)/).filter(Boolean);
  if (parts.length === 0) throw new Error('empty hotkey');
  return parts.map((p) => {
    const ks = keyNameToKeysym(p);
    if (ks === null) throw new Error(`unknown key '${p}' in hotkey '${spec}'`);
    return ks;
  });
}
