// `starkv devices [--json]`: which compute devices the engine can use here: the CPU (threads, GEMM
// library, SIMD) and what CUDA the addon was built with and which GPUs the driver shows.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadAddon } from '../../native.ts';

export default async function devices(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write('usage: starkv devices [--json]   the CPU and the CUDA devices the engine can run on (--device auto|cpu|cuda[:N])\n');
    return 0;
  }
  // free memory too: a short-lived process, so the contexts this creates on every GPU go with it
  const cuda = loadAddon().cudaInfo({ freeMemory: true }) as { compiled: boolean; archs: string[]; devices: Array<{ index: number; name: string; cc: string; totalBytes: number; freeBytes: number }>; error: string | null };
  const ci = loadAddon().cpuInfo() as { simd: string; onednn: boolean; bf16Matmul: boolean; bf16Impl: string };
  const cpu = { model: os.cpus()[0]?.model ?? 'unknown', threads: os.availableParallelism(), memoryBytes: os.totalmem(), ...ci };
  if (values.json) {
    process.stdout.write(JSON.stringify({ cpu, cuda }) + '\n');
    return 0;
  }
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  const lines = [
    `cpu      ${cpu.model}, ${cpu.threads} threads, ${gib(cpu.memoryBytes)}; ${cpu.simd}; GEMM ${cpu.onednn ? 'oneDNN' : 'built-in'}`,
    cpu.bf16Matmul
      ? `         bf16 prefill available (oneDNN ${cpu.bf16Impl}): --cpu-matmul bf16 or auto runs prefill matmuls and attention in bf16`
      : `         no bf16 prefill (${cpu.bf16Impl}): --cpu-matmul bf16 is refused here, auto runs fp32`,
  ];
  if (!cuda.compiled) lines.push(`cuda     ${cuda.error ?? 'not built'}`);
  else {
    lines.push(`cuda     built for sm_${cuda.archs.join(', sm_')} (cudart static; cuBLAS loaded at run time when installed)`);
    for (const d of cuda.devices) lines.push(`cuda:${d.index}   ${d.name} (sm_${String(d.cc).replace('.', '')}), ${gib(d.freeBytes)} free of ${gib(d.totalBytes)}`);
    if (cuda.devices.length === 0) lines.push(`         ${cuda.error}; --device auto runs on the CPU`);
    else
      lines.push(
        process.env.STARKV_CUDA_ATTN === 'fp32'
          ? '         attention: the fp32 kernel for every model (STARKV_CUDA_ATTN=fp32)'
          : '         attention: tensor cores (bf16) for the prefill and vision blocks of bf16 models, fp32 otherwise (STARKV_CUDA_ATTN=fp32 keeps fp32)',
      );
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
