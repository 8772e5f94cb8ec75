// Imported first by main.tsx: the page's CSP forbids eval, so zod must not probe for it (the probe
// logs a CSP violation) and must build its schemas without JIT.
import { z } from 'zod';

z.config({ jitless: true });
