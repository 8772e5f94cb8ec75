// Which actions need the user's confirmation before they run. Configurable; the defaults cover hotkeys
// that close or delete, typing where the model says it is entering a password, and typed shell commands
// that delete or escalate.
import { parseHotkey } from '../desktop/keysyms.ts';
import type { ScreenAction } from './actions.ts';

export interface RiskPolicy {
  /** Off: nothing is risky (the CLI's --yes-risky still records the reasons). */
  enabled: boolean;
  /** Hotkeys (any order of the same keys), e.g. 'alt f4', 'ctrl w'. */
  hotkeys: string[];
  /** Typed text matching any of these is risky (shell commands that delete, escalate, format...). */
  typePatterns: RegExp[];
  /** A type action whose thought (or the task) matches these is typing into a password-like field. */
  passwordHints: RegExp[];
}

/** The default risky typed-text rules, each with what it catches in words (the confirm dialog shows these). */
export const RISKY_PATTERNS: Array<[RegExp, string]> = [
  [/(^|[\s;&|(`$])rm\s/, 'deletes files (rm)'],
  [/(^|[\s;&|(`$])sudo\b/, 'runs a command as root (sudo)'],
  [/(^|[\s;&|(`$])(su|doas|pkexec)\s/, 'switches to another user (su, doas, pkexec)'],
  [/(^|[\s;&|(`$])(mkfs(\.\w+)?|fdisk|parted|wipefs|shred)\b/, 'formats, partitions or wipes a disk'],
  [/(^|[\s;&|(`$])dd\s+.*\bof=/, 'writes raw data over a file or device (dd)'],
  [/(^|[\s;&|(`$])(shutdown|reboot|poweroff|halt)\b/, 'shuts down or restarts the machine'],
  [/(^|[\s;&|(`$])chmod\s+(-R\s+)?[0-7]*777\b/, 'makes files writable by everyone (chmod 777)'],
  [/(^|[\s;&|(`$])chown\s+-R\b/, 'changes the owner of a whole folder tree (chown -R)'],
  [/:\(\)\s*\{\s*:\|:&\s*\};:/, 'a fork bomb'],
  [/>\s*\/dev\/(sd|nvme|hd)/, 'writes over a disk device'],
  [/\b(curl|wget)\b[^|\n]*\|\s*(sudo\s+)?(ba|z)?sh\b/, 'runs a script downloaded from the internet'],
  [/\bgit\s+(push\s+(-f|--force)|reset\s+--hard|clean\s+-[a-z]*f)/, 'rewrites or discards git history or files (force push, hard reset, clean)'],
  [/\bDROP\s+(TABLE|DATABASE)\b/i, 'drops a database or table (SQL)'],
];
const PATTERN_NAMES = new Map(RISKY_PATTERNS.map(([re, name]) => [re.source, name]));

export const DEFAULT_RISK_POLICY: RiskPolicy = {
  enabled: true,
  hotkeys: [
    'alt f4', 'ctrl w', 'ctrl q', 'ctrl shift w', 'ctrl shift q', 'super q', 'super w',
    'delete', 'shift delete', 'ctrl delete', 'ctrl shift delete', 'super backspace', 'ctrl alt delete', 'ctrl alt backspace',
  ],
  typePatterns: RISKY_PATTERNS.map(([re]) => re),
  passwordHints: [/pass(word|phrase|code)?\b/i, /\bPIN\b/, /密码|口令/],
};

const chordKey = (spec: string): string | null => {
  try {
    return [...new Set(parseHotkey(spec))].sort((a, b) => a - b).join('+');
  } catch {
    return null;
  }
};

/** Reasons why `a` is risky under `policy` (empty: not risky). */
export function assessRisk(a: ScreenAction, thought: string, policy: RiskPolicy = DEFAULT_RISK_POLICY): string[] {
  if (!policy.enabled) return [];
  const reasons: string[] = [];
  if (a.type === 'hotkey') {
    const k = chordKey(a.keys);
    if (k && policy.hotkeys.some((h) => chordKey(h) === k)) reasons.push(`hotkey '${a.keys}' can close windows or delete things`);
  }
  if (a.type === 'type') {
    const hit = policy.typePatterns.find((re) => re.test(a.text));
    if (hit) {
      const name = PATTERN_NAMES.get(hit.source);
      reasons.push(`typed text looks like a dangerous command: ${name ?? `it matches your risky pattern /${hit.source}/`}`);
    }
    if (policy.passwordHints.some((re) => re.test(thought))) reasons.push('the model says it is typing into a password field');
  }
  return reasons;
}

/** A confirmation request handed to the UI (CLI prompt, window dialog, test). */
export interface ConfirmRequest {
  step: number;
  action: ScreenAction;
  thought: string;
  reasons: string[];
}

export type ConfirmFn = (req: ConfirmRequest) => Promise<boolean>;
