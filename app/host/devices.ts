// The compute devices the engine can run on here, as the host tells each window (hello) and checks a
// device setting against: the CPU, and the CUDA GPUs the addon's cudaInfo() reports (the same source as
// `starkv devices`). Asked once per host; without the addon or a GPU, the list says why there is none.
import { loadAddon } from '../native.ts';
import type { Devices } from '../protocol.ts';

interface CudaInfo {
  compiled: boolean;
  devices: Array<{ index: number; name: string; cc: string | number; totalBytes: number }>;
  error: string | null;
}

interface CpuInfo {
  bf16Matmul: boolean;
  bf16Impl: string;
}

/** What the engine reports: one entry per GPU (cuda:0 .. cuda:N-1), or why there is none; and whether
 * the CPU has the bf16 prefill path. */
export function probeDevices(
  info: () => CudaInfo = () => loadAddon().cudaInfo() as CudaInfo,
  cpuInfo: () => CpuInfo = () => loadAddon().cpuInfo() as CpuInfo,
): Devices {
  let cpuBf16: Devices['cpuBf16'];
  try {
    const ci = cpuInfo();
    cpuBf16 = { available: ci.bf16Matmul, impl: ci.bf16Impl };
  } catch (e) {
    cpuBf16 = { available: false, impl: `the engine could not be asked: ${(e as Error).message}` };
  }
  try {
    const c = info();
    const gpus = c.devices.map((d) => ({ id: `cuda:${d.index}`, name: d.name, cc: String(d.cc), totalBytes: d.totalBytes }));
    return { gpus, note: gpus.length ? null : (c.error ?? (c.compiled ? 'no CUDA device' : 'built without CUDA')), cpuBf16 };
  } catch (e) {
    return { gpus: [], note: `the engine could not be asked: ${(e as Error).message}`, cpuBf16 };
  }
}

/** Why a CPU-matmul setting cannot be chosen here ('bf16' on a CPU without the bf16 path), or null. */
export function cpuMatmulProblem(choice: string, d: Devices): string | null {
  if (choice !== 'bf16' || !d.cpuBf16 || d.cpuBf16.available) return null;
  return `model.cpuMatmul: bf16 is not available on this CPU (${d.cpuBf16.impl}); choose auto (fp32 here) or fp32`;
}

/** GPU index of a device setting ('cuda' is cuda:0), or null for auto / cpu. */
export function gpuIndex(device: string): number | null {
  if (device === 'cuda') return 0;
  const m = /^cuda:(\d+)$/.exec(device);
  return m ? Number(m[1]) : null;
}

/** Why a device setting cannot be chosen here (a GPU the engine does not report), or null. */
export function deviceProblem(device: string, d: Devices): string | null {
  const i = gpuIndex(device);
  if (i === null || d.gpus.some((g) => g.id === `cuda:${i}`)) return null;
  if (!d.gpus.length) return `model.device: ${device} is not available here (${d.note ?? 'no CUDA device'}); choose auto or cpu`;
  return `model.device: ${device} is not a GPU here; the engine reports ${d.gpus.map((g) => g.id).join(', ')}`;
}
