// STARKV_HD marks per-element math shared by the CPU code and the CUDA kernels (kernels/).
// On CPU it expands to nothing; a CUDA build defines it as `__host__ __device__`.
#pragma once

#if defined(__CUDACC__) && !defined(STARKV_HD)
#define STARKV_HD __host__ __device__
#endif
#ifndef STARKV_HD
#define STARKV_HD
#endif
