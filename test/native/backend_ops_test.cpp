// The backend op table, in the spirit of llama.cpp's test-backend-ops: every op of native/core/backend.h
// over a table of shapes x dtypes (odd sizes, GQA ratios, head dims, masks). Each case runs on the CPU
// backend and is compared with a plain double-precision reference written here; when the build has CUDA
// (STARKV_HAVE_CUDA) and a device is present, it also runs on the CUDA backend (cuBLAS path, and our
// own GEMM kernels with cuBLAS switched off) and is compared with the CPU backend. Error measure:
// ||a - b|| / ||ref|| (normalised L2), threshold per op and dtype. One line per case; the summary says
// plainly what ran. Exits non-zero if any case exceeds its threshold.
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/dtype.h"
#include "core/error.h"
#include "cpu/attention.h"
#include "cpu/cpu_backend.h"
#ifdef STARKV_HAVE_CUDA
#include "cuda_backend.h"  // kernels/
#endif

using namespace starkv;

namespace {

// ---- host data ----
std::mt19937 g_rng(1234);

std::vector<float> Randn(int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(g_rng);
  return v;
}

// A host weight tensor kept alive for the whole test (the CUDA backend caches device copies by host
// address, as the engine does for the model's lifetime; a freed and reused address would alias).
struct HostWeight {
  std::vector<uint16_t> h;
  std::vector<float> f;  // exact value of every element
  Tensor t;
};
std::deque<HostWeight> g_weights;

uint16_t ToF16(float v) {  // round to nearest even (finite, normal or subnormal range of small values)
  const float a = std::fabs(v);
  uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  if (a == 0.0f) return sign;
  int e;
  std::frexp(a, &e);  // a in [2^(e-1), 2^e)
  int ee = e - 1 + 15;
  if (ee < 1) ee = 1;  // subnormal spacing
  const double step = std::ldexp(1.0, (ee - 15) - 10);
  double q = std::nearbyint(a / step) * step;
  // re-derive bits from q
  int e2;
  std::frexp(q, &e2);
  int be = e2 - 1 + 15;
  if (be < 1) return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::lround(q / std::ldexp(1.0, -24))));
  const uint16_t man = static_cast<uint16_t>(std::lround((q / std::ldexp(1.0, e2 - 1) - 1.0) * 1024.0)) & 0x3ff;
  return static_cast<uint16_t>(sign | (be << 10) | man);
}

const HostWeight& Weight(DType dt, std::vector<int64_t> shape, float scale = 1.0f, float offset = 0.0f) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  std::vector<float> v = Randn(n, scale);
  HostWeight& w = g_weights.emplace_back();
  w.f.resize(static_cast<size_t>(n));
  if (dt != DType::F32) w.h.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float x = v[i] + offset;
    if (dt == DType::BF16) {
      w.h[i] = F32ToBf16(x);
      x = Bf16ToF32(w.h[i]);
    } else if (dt == DType::F16) {
      w.h[i] = ToF16(x);
      x = F16ToF32(w.h[i]);
    }
    w.f[i] = x;
  }
  w.t.dtype = dt;
  w.t.ndim = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) w.t.shape[i] = shape[i];
  w.t.data = dt == DType::F32 ? static_cast<const void*>(w.f.data()) : static_cast<const void*>(w.h.data());
  return w;
}

// ---- backend memory helpers ----
struct Mem {
  explicit Mem(Backend& b) : be(b) {}
  Backend& be;
  std::vector<Buffer> bufs;
  float* Put(const std::vector<float>& h) {
    bufs.push_back(be.Alloc(MemCategory::Activations, static_cast<int64_t>(h.size())));
    be.Upload(h.data(), sizeof(float) * h.size(), bufs.back().f());
    return bufs.back().f();
  }
  float* Zeros(int64_t n) {
    bufs.push_back(be.Alloc(MemCategory::Activations, n));
    return bufs.back().f();
  }
  std::vector<float> Get(const float* p, int64_t n) {
    std::vector<float> h(static_cast<size_t>(n));
    be.Download(p, sizeof(float) * h.size(), h.data());
    return h;
  }
};

double NormErr(const std::vector<float>& a, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = (i < a.size() ? a[i] : 0.0) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (a.size() != ref.size() || std::isnan(num)) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
std::vector<double> ToD(const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); }

// ---- the table ----
struct Case {
  std::string name;
  std::function<std::vector<float>(Backend&)> run;  // the op on a backend, output back on the host
  std::vector<double> ref;                          // double-precision reference
  double thr_cpu;                                   // CPU vs reference
  double thr_dev;                                   // device vs CPU
  double thr_dev_own = -1;                          // device with our own GEMM (cuBLAS off); -1: thr_dev
};
std::vector<Case> g_cases;

void Add(std::string name, std::function<std::vector<float>(Backend&)> run, std::vector<double> ref, double thr_cpu,
         double thr_dev, double thr_dev_own = -1) {
  g_cases.push_back(Case{std::move(name), std::move(run), std::move(ref), thr_cpu, thr_dev, thr_dev_own});
}

std::string Fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string Fmt(const char* f, ...) {
  char b[256];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(b, sizeof b, f, ap);
  va_end(ap);
  return b;
}

void MatMulCases() {
  const int64_t shapes[][3] = {{1, 3, 17},   {3, 17, 33},  {4, 64, 128}, {5, 33, 130}, {17, 130, 64},
                               {33, 1, 96},  {130, 96, 33}, {64, 128, 256}, {2, 257, 520}, {70, 200, 136}};
  for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
    int idx = 0;
    for (const auto& s : shapes) {
      const int64_t M = s[0], N = s[1], K = s[2];
      for (bool bias : {false, true}) {
        if (bias && idx++ % 2) continue;  // bias on half of the shapes, both on the rest
        const HostWeight& W = Weight(dt, {N, K}, 0.5f);
        const HostWeight* B = bias ? &Weight(dt, {N}, 0.5f) : nullptr;
        const std::vector<float> x = Randn(M * K);
        std::vector<double> ref(static_cast<size_t>(M * N));
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double acc = B ? B->f[n] : 0.0;
            for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(x[m * K + k]) * W.f[n * K + k];
            ref[m * N + n] = acc;
          }
        // Device: x is rounded to W's 16-bit type for the tensor-core paths (M > 4); the GEMV keeps fp32.
        const double dev = dt == DType::F32 || M <= 4 ? 2e-5 : 1e-2;
        Add(Fmt("matmul %s M=%lld N=%lld K=%lld%s", DTypeName(dt), (long long)M, (long long)N, (long long)K,
                bias ? " +bias" : ""),
            [=, &W](Backend& be) {
              Mem mem(be);
              float* xp = mem.Put(x);
              float* y = mem.Zeros(M * N);
              be.MatMul(xp, M, W.t, B ? &B->t : nullptr, y);
              return mem.Get(y, M * N);
            },
            ref, 2e-5, dev, dt == DType::F32 ? 2e-5 : dev);
      }
    }
  }
}

// The CPU backend with the bf16 prefill path on (cpuMatmul "bf16"); the table's own CPU backend has the default, fp32.
Backend& CpuBf16() {
  static MemoryAccount acc;
  static cpu::CpuBackend be(&acc, [] {
    cpu::CpuOptions o;
    o.threads = 2;
    o.matmul = "bf16";
    return o;
  }());
  return be;
}

bool CpuHasBf16() { return cpu::Bf16MatmulFast(nullptr); }

// BF16 weights through the bf16 prefill path (M >= large_m): the reference rounds x to bf16 the way
// the path does, so what is left is fp32 accumulation order. Devices compare with that CPU output:
// cuBLAS / wmma round x to bf16 as well.
void MatMulBf16Cases() {
  std::string impl;
  if (!cpu::Bf16MatmulFast(&impl)) {
    std::printf("matmul bf16-x cases: not run, this CPU has no fast oneDNN bf16 matmul (%s)\n", impl.c_str());
    return;
  }
  std::printf("matmul bf16-x cases: oneDNN %s\n", impl.c_str());
  const int64_t shapes[][3] = {{20, 7, 33}, {33, 1, 96}, {130, 96, 33}, {64, 128, 256}, {70, 200, 136}, {600, 300, 200}};
  for (const auto& s : shapes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    const HostWeight& W = Weight(DType::BF16, {N, K}, 0.5f);
    const HostWeight* B = N == 96 ? &Weight(DType::BF16, {N}, 0.5f) : nullptr;
    const std::vector<float> x = Randn(M * K);
    std::vector<double> ref(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double acc = B ? B->f[n] : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(Bf16ToF32(F32ToBf16(x[m * K + k]))) * W.f[n * K + k];
        ref[m * N + n] = acc;
      }
    Add(Fmt("matmul bf16-x M=%lld N=%lld K=%lld%s", (long long)M, (long long)N, (long long)K, B ? " +bias" : ""),
        [=, &W](Backend& be) {
          Backend& b = be.Name() == "cpu" ? CpuBf16() : be;
          Mem mem(b);
          float* xp = mem.Put(x);
          float* y = mem.Zeros(M * N);
          b.MatMul(xp, M, W.t, B ? &B->t : nullptr, y);
          return mem.Get(y, M * N);
        },
        ref, 1e-6, 1e-5);
  }
  // The settings' names are checked where they are resolved.
  bool threw = false;
  try {
    cpu::ResolveCpuMatmul("bf17", true);
  } catch (const Error& e) {
    threw = std::string(e.what()).find("'bf17' is not auto, fp32 or bf16") != std::string::npos;
  }
  if (!threw) std::printf("ResolveCpuMatmul accepted 'bf17'\n");
  Add("cpuMatmul names a bad value", [threw](Backend&) { return std::vector<float>{threw ? 1.0f : 0.0f}; }, {1.0},
      0, 0);
}

void NormCases() {
  for (DType dt : {DType::BF16, DType::F32})
    for (auto [M, D] : std::vector<std::pair<int64_t, int64_t>>{{1, 64}, {3, 1000}, {17, 3584}, {5, 1280}}) {
      const HostWeight& w = Weight(dt, {D}, 0.2f, 1.0f);
      const HostWeight& b = Weight(dt, {D}, 0.2f);
      const std::vector<float> x = Randn(M * D, 3.0f);
      const float eps = 1e-6f;
      std::vector<double> rr(static_cast<size_t>(M * D)), lr(rr.size());
      for (int64_t r = 0; r < M; ++r) {
        double ss = 0, s = 0;
        for (int64_t i = 0; i < D; ++i) ss += double(x[r * D + i]) * x[r * D + i], s += x[r * D + i];
        const double inv = 1.0 / std::sqrt(ss / D + eps), mean = s / D;
        double v = 0;
        for (int64_t i = 0; i < D; ++i) v += (x[r * D + i] - mean) * (x[r * D + i] - mean);
        const double rstd = 1.0 / std::sqrt(v / D + eps);
        for (int64_t i = 0; i < D; ++i) {
          rr[r * D + i] = w.f[i] * x[r * D + i] * inv;
          lr[r * D + i] = (x[r * D + i] - mean) * rstd * w.f[i] + b.f[i];
        }
      }
      Add(Fmt("rmsnorm %s M=%lld D=%lld", DTypeName(dt), (long long)M, (long long)D),
          [=, &w](Backend& be) {
            Mem mem(be);
            float* y = mem.Zeros(M * D);
            be.RmsNorm(mem.Put(x), M, D, w.t, eps, y);
            return mem.Get(y, M * D);
          },
          rr, 1e-6, 1e-6);
      Add(Fmt("layernorm %s M=%lld D=%lld", DTypeName(dt), (long long)M, (long long)D),
          [=, &w, &b](Backend& be) {
            Mem mem(be);
            float* y = mem.Zeros(M * D);
            be.LayerNorm(mem.Put(x), M, D, w.t, b.t, eps, y);
            return mem.Get(y, M * D);
          },
          lr, 1e-6, 1e-6);
    }
}

// Row norms (what KV compression reads of a frame's attention inputs): widths of the tiny models, a 7B
// row (3584) and odd ones; rows 1 to a screenshot's worth; a row offset into a larger buffer.
void RowNormCases() {
  for (auto [rows, width] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 64}, {37, 33}, {300, 1536}, {2691, 3584}, {5, 4097}}) {
    const int64_t skip = 3;  // rows before the first one read
    const std::vector<float> x = Randn((rows + skip) * width, 2.0f);
    std::vector<double> ref(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < width; ++i) ss += double(x[(r + skip) * width + i]) * x[(r + skip) * width + i];
      ref[r] = std::sqrt(ss);
    }
    Add(Fmt("row_norms rows=%lld width=%lld", (long long)rows, (long long)width),
        [=](Backend& be) {
          Mem mem(be);
          float* y = mem.Zeros(rows);
          be.RowNorms(mem.Put(x) + skip * width, rows, width, y);
          return mem.Get(y, rows);
        },
        ref, 1e-7, 1e-7);
  }
}

void RotaryCases() {
  for (int hd : {64, 80, 128})
    for (auto [n, heads] : std::vector<std::pair<int64_t, int>>{{1, 1}, {7, 3}, {33, 4}}) {
      const int64_t row = heads * hd + 2 * hd + 3;  // a strided row (e.g. the vision tower's fused qkv)
      const int half = hd / 2;
      const std::vector<float> x = Randn(n * row);
      std::vector<float> cs(static_cast<size_t>(n * half)), sn(cs.size());
      std::uniform_real_distribution<float> ang(-10.0f, 10.0f);
      for (size_t i = 0; i < cs.size(); ++i) {
        const float a = ang(g_rng);
        cs[i] = std::cos(a);
        sn[i] = std::sin(a);
      }
      std::vector<double> ref = ToD(x);
      for (int64_t i = 0; i < n; ++i)
        for (int h = 0; h < heads; ++h)
          for (int j = 0; j < half; ++j) {
            const int64_t p = i * row + h * hd + j;
            const double a = x[p], b = x[p + half], c = cs[i * half + j], s = sn[i * half + j];
            ref[p] = a * c - b * s;
            ref[p + half] = b * c + a * s;
          }
      Add(Fmt("rotary n=%lld heads=%d hd=%d row=%lld", (long long)n, heads, hd, (long long)row),
          [=](Backend& be) {
            Mem mem(be);
            float* xp = mem.Put(x);
            be.Rotary(xp, n, row, heads, hd, mem.Put(cs), mem.Put(sn));
            return mem.Get(xp, n * row);
          },
          ref, 1e-6, 1e-6);
    }
}

// Attention reference in double over the AttnArgs addressing and masks.
std::vector<double> AttnRef(const std::vector<float>& q, int64_t q_row, const std::vector<float>& k,
                            const std::vector<float>& v, int64_t kv_row, int64_t kv_head, int64_t out_row,
                            int64_t n_q, int64_t n_kv, int heads, int kv_heads, int hd, float scale,
                            const std::vector<int64_t>& seg, bool bf16_p = false) {
  std::vector<double> out(static_cast<size_t>(n_q * out_row), 0.0);
  const int group = heads / kv_heads;
  for (int64_t i = 0; i < n_q; ++i) {
    int64_t lo = 0, hi = n_kv - n_q + i + 1;
    if (!seg.empty())
      for (size_t j = 0; j + 1 < seg.size(); ++j)
        if (seg[j] <= i && i < seg[j + 1]) lo = seg[j], hi = seg[j + 1];
    for (int h = 0; h < heads; ++h) {
      const int g = h / group;
      std::vector<double> s(static_cast<size_t>(hi - lo));
      double m = -INFINITY;
      for (int64_t t = lo; t < hi; ++t) {
        double d = 0;
        for (int c = 0; c < hd; ++c) d += double(q[i * q_row + h * hd + c]) * k[g * kv_head + t * kv_row + c];
        s[t - lo] = d * scale;
        m = std::max(m, s[t - lo]);
      }
      if (!bf16_p) {
        double z = 0;
        for (double& e : s) z += (e = std::exp(e - m));
        for (int c = 0; c < hd; ++c) {
          double o = 0;
          for (int64_t t = lo; t < hi; ++t) o += s[t - lo] / z * v[g * kv_head + t * kv_row + c];
          out[i * out_row + h * hd + c] = o;
        }
        continue;
      }
      // The bf16 path's online softmax: keys in chunks of kAttnKeyChunk from the range's start; in each,
      // exp(s - running max) rounded to bf16 multiplies V, the sum takes the unrounded terms, and what
      // was accumulated before is rescaled when the max grows.
      std::vector<double> o(static_cast<size_t>(hd), 0.0);
      double run_m = -INFINITY, z = 0;
      for (int64_t c0 = lo; c0 < hi; c0 += cpu::kAttnKeyChunk) {
        const int64_t c1 = std::min(hi, c0 + cpu::kAttnKeyChunk);
        double mc = run_m;
        for (int64_t t = c0; t < c1; ++t) mc = std::max(mc, s[t - lo]);
        const double alpha = run_m == -INFINITY ? 0.0 : std::exp(run_m - mc);
        run_m = mc;
        z *= alpha;
        for (double& x : o) x *= alpha;
        for (int64_t t = c0; t < c1; ++t) {
          const double e = std::exp(s[t - lo] - mc);
          z += e;
          const double p = Bf16ToF32(F32ToBf16(static_cast<float>(e)));
          for (int c = 0; c < hd; ++c) o[c] += p * v[g * kv_head + t * kv_row + c];
        }
      }
      for (int c = 0; c < hd; ++c) out[i * out_row + h * hd + c] = o[c] / z;
    }
  }
  return out;
}

// bf16 attention cases (the CPU's bf16 prefill path on a bf16 model): the reference takes q, k and v
// rounded to bf16 and rounds the unnormalised probabilities of each key chunk to bf16, as the path does; what is left is
// fp32 accumulation and softmax, which move a few probabilities across a bf16 rounding boundary (one
// bf16 step, 2^-8 of the probability, each): up to ~3e-5 here, hence 1e-4 rather than fp32's 1e-5
// (without the reference's rounding the error is ~1e-3). The CUDA backend runs these blocks on tensor
// cores (kernels/attention.cu: bf16 operands, probabilities rounded per 64-key tile, not per 512-key
// chunk): its difference from the CPU is a few bf16 steps (emulated: up to 1.3e-3), bounded by 1e-2
// (head_dim > 128 stays fp32 there: the difference is then the CPU's rounding, 2.5e-3).
std::vector<float> RoundBf16(std::vector<float> v) {
  for (float& x : v) x = Bf16ToF32(F32ToBf16(x));
  return v;
}
constexpr double kBf16AttnCpu = 1e-4, kBf16AttnDev = 1e-2;

// KV-store layout: q [n_q][heads*hd]; keys/values [kv_heads][cap][hd].
void AttnStoreCase(int64_t n_q, int64_t n_kv, int kv_heads, int ratio, int hd, bool bf16 = false) {
  const int heads = kv_heads * ratio;
  const int64_t cap = n_kv + 5, qd = int64_t(heads) * hd;
  const std::vector<float> q = Randn(n_q * qd), k = Randn(kv_heads * cap * hd), v = Randn(kv_heads * cap * hd);
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  // Blocks of fewer than 16 rows (decode) stay fp32 on the bf16 path. Without the CPU's bf16 path (no
  // AVX512-BF16, or no oneDNN, as gpu-check builds) the CPU runs the case in fp32 against the fp32
  // reference, and a device's bf16 attention is compared with that (within kBf16AttnDev all the same).
  const bool cpu16 = bf16 && CpuHasBf16();
  const bool b16 = cpu16 && n_q >= 16;
  std::vector<double> ref = b16 ? AttnRef(RoundBf16(q), qd, RoundBf16(k), RoundBf16(v), hd, cap * hd, qd, n_q, n_kv,
                                          heads, kv_heads, hd, scale, {}, true)
                                : AttnRef(q, qd, k, v, hd, cap * hd, qd, n_q, n_kv, heads, kv_heads, hd, scale, {});
  Add(Fmt("attention%s %s n_q=%lld n_kv=%lld heads=%d/%d hd=%d", bf16 ? " bf16" : "",
          n_q == 1 ? "decode" : n_q == n_kv ? "causal" : "prefix", (long long)n_q, (long long)n_kv, heads, kv_heads, hd),
      [=](Backend& dev) {
        Backend& be = cpu16 && dev.Name() == "cpu" ? CpuBf16() : dev;
        Mem mem(be);
        AttnArgs a;
        a.q = mem.Put(q);
        a.q_row = qd;
        a.k = mem.Put(k);
        a.k_row = hd;
        a.k_head = cap * hd;
        a.v = mem.Put(v);
        a.v_row = hd;
        a.v_head = cap * hd;
        a.out = mem.Zeros(n_q * qd);
        a.out_row = qd;
        a.n_q = n_q;
        a.n_kv = n_kv;
        a.heads = heads;
        a.kv_heads = kv_heads;
        a.hd = hd;
        a.scale = scale;
        a.bf16_weights = bf16;
        be.Attention(a);
        return mem.Get(a.out, n_q * qd);
      },
      ref, b16 ? kBf16AttnCpu : 1e-5, bf16 && n_q >= 16 ? kBf16AttnDev : 1e-5);
}

// Vision layout: fused rows [n][3*C] (q | k | v), heads == kv_heads, segments.
void AttnSegmentCase(int64_t n, int heads, int hd, std::vector<int64_t> seg, bool bf16 = false) {
  const int64_t C = int64_t(heads) * hd;
  const bool cpu16 = bf16 && CpuHasBf16();  // as in AttnStoreCase
  const std::vector<float> qkv = Randn(n * 3 * C);
  const std::vector<float> r = cpu16 ? RoundBf16(qkv) : qkv;
  std::vector<float> q(r), k(r.begin() + C, r.end()), v(r.begin() + 2 * C, r.end());
  k.resize(qkv.size(), 0.0f);
  v.resize(qkv.size(), 0.0f);
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  std::vector<double> ref = AttnRef(q, 3 * C, k, v, 3 * C, hd, C, n, n, heads, heads, hd, scale, seg, cpu16);
  Add(Fmt("attention%s segments n=%lld (%zu windows) heads=%d hd=%d", bf16 ? " bf16" : "", (long long)n, seg.size() - 1,
          heads, hd),
      [=](Backend& dev) {
        Backend& be = cpu16 && dev.Name() == "cpu" ? CpuBf16() : dev;
        Mem mem(be);
        float* base = mem.Put(qkv);
        AttnArgs a;
        a.q = base;
        a.q_row = 3 * C;
        a.k = base + C;
        a.k_row = 3 * C;
        a.k_head = hd;
        a.v = base + 2 * C;
        a.v_row = 3 * C;
        a.v_head = hd;
        a.out = mem.Zeros(n * C);
        a.out_row = C;
        a.n_q = a.n_kv = n;
        a.heads = a.kv_heads = heads;
        a.hd = hd;
        a.scale = scale;
        a.segments = seg.data();
        a.n_segments = static_cast<int>(seg.size()) - 1;
        a.bf16_weights = bf16;
        be.Attention(a);
        return mem.Get(a.out, n * C);
      },
      ref, cpu16 ? kBf16AttnCpu : 1e-5, bf16 ? kBf16AttnDev : 1e-5);
}

void AttentionCases() {
  for (int hd : {64, 80, 128})
    for (int ratio : {1, 2, 7}) {
      AttnStoreCase(17, 17, 2, ratio, hd);   // causal prefill
      AttnStoreCase(1, 33, 2, ratio, hd);    // decode over the store
      AttnStoreCase(9, 59, 2, ratio, hd);    // a new block after a stored prefix
    }
  AttnStoreCase(130, 130, 4, 7, 128);  // longer prefill, several key tiles
  AttnStoreCase(1, 300, 4, 7, 128);    // longer decode
  AttnStoreCase(1, 1, 1, 1, 64);       // a single key
  AttnStoreCase(3, 203, 2, 6, 128);    // a few rows over many slots (the decode layout with rows)
  AttnStoreCase(1, 1500, 4, 7, 128);   // long decode: the key range split over blocks (CUDA)
  AttnStoreCase(5, 777, 2, 2, 80);     // split with several rows
  AttnStoreCase(1, 600, 2, 1, 64);     // split without GQA (prefill layout)
  AttnStoreCase(600, 600, 2, 2, 64);   // causal over two key chunks: early rows see none of the second
  AttnStoreCase(40, 1300, 2, 3, 80);   // a block after a prefix of three chunks
  AttnSegmentCase(70, 2, 80, {0, 16, 40, 41, 70});
  AttnSegmentCase(64, 3, 64, {0, 64});
  AttnSegmentCase(45, 1, 128, {0, 1, 2, 45});
  AttnStoreCase(9, 40, 1, 2, 170);     // head_dim 170: the fp32 tiles fit 48 KB, with the static shared not (CUDA opts in)
  // The bf16 path (bf16 weights, cpuMatmul bf16): prefill blocks, a block after a prefix, GQA, vision
  // windows and a full-attention image; decode rows on the same backend stay fp32.
  std::string impl;
  if (!cpu::Bf16MatmulFast(&impl))
    std::printf("attention bf16 cases: the CPU runs them in fp32 (no fast oneDNN bf16 matmul: %s); a device's bf16 "
                "attention is compared with that\n", impl.c_str());
  AttnStoreCase(17, 17, 2, 7, 128, true);
  AttnStoreCase(130, 130, 4, 7, 128, true);
  AttnStoreCase(40, 333, 2, 2, 80, true);
  AttnStoreCase(1, 300, 4, 7, 128, true);
  AttnSegmentCase(70, 2, 80, {0, 16, 40, 41, 70}, true);
  AttnSegmentCase(300, 2, 80, {0, 300}, true);
  AttnStoreCase(600, 600, 2, 2, 64, true);
  AttnStoreCase(40, 1300, 2, 3, 80, true);
  AttnSegmentCase(1100, 1, 64, {0, 530, 1100}, true);  // windows longer than a chunk, not aligned to it
  AttnStoreCase(100, 150, 2, 2, 40, true);             // head_dim not a multiple of 16 (zero-padded tiles)
  AttnSegmentCase(200, 2, 72, {0, 37, 101, 200}, true); // windows across 64-row tiles, head_dim 72
  AttnStoreCase(16, 16, 1, 3, 48, true);                // exactly 16 rows: the smallest bf16 block
  AttnStoreCase(20, 20, 1, 2, 160, true);               // head_dim > 128: CUDA keeps its fp32 kernel
}

double ActRef(Act a, double x) {
  switch (a) {
    case Act::Silu: return x / (1.0 + std::exp(-x));
    case Act::GeluErf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case Act::QuickGelu: return x / (1.0 + std::exp(-1.702 * x));
  }
  return x;
}

void PointwiseCases() {
  const char* names[] = {"silu", "gelu_erf", "quick_gelu"};
  for (Act act : {Act::Silu, Act::GeluErf, Act::QuickGelu})
    for (int64_t n : {1, 1000, 4099}) {
      std::vector<float> g = Randn(n, 3.0f), u = Randn(n);
      if (n == 1) g[0] = 0.7f;  // one element: a deep negative input would measure erf's cancellation, not the op
      std::vector<double> gr(static_cast<size_t>(n)), ar(gr.size());
      for (int64_t i = 0; i < n; ++i) {
        ar[i] = ActRef(act, g[i]);
        gr[i] = ar[i] * u[i];
      }
      Add(Fmt("gated_act %s n=%lld", names[int(act)], (long long)n),
          [=](Backend& be) {
            Mem mem(be);
            float* gp = mem.Put(g);
            be.GatedAct(act, gp, mem.Put(u), n, gp);  // out aliases gate, as the models call it
            return mem.Get(gp, n);
          },
          gr, 1e-6, 1e-6);
      Add(Fmt("activation %s n=%lld", names[int(act)], (long long)n),
          [=](Backend& be) {
            Mem mem(be);
            float* gp = mem.Put(g);
            be.Activation(act, gp, n);
            return mem.Get(gp, n);
          },
          ar, 1e-6, 1e-6);
    }
  for (int64_t n : {1, 777, 100000}) {
    const std::vector<float> y = Randn(n), x = Randn(n);
    std::vector<double> ref(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) ref[i] = double(y[i]) + x[i];
    Add(Fmt("add n=%lld", (long long)n),
        [=](Backend& be) {
          Mem mem(be);
          float* yp = mem.Put(y);
          be.Add(yp, mem.Put(x), n);
          return mem.Get(yp, n);
        },
        ref, 1e-7, 1e-7);
  }
}

void GatherCopyCases() {
  for (DType dt : {DType::BF16, DType::F16, DType::F32})
    for (int64_t D : {96, 130}) {
      const HostWeight& t = Weight(dt, {50, D});
      const std::vector<int32_t> ids = {3, 0, 49, 3, 17, 17, 8};
      const int64_t n = static_cast<int64_t>(ids.size());
      std::vector<double> ref(static_cast<size_t>(n * D));
      for (int64_t i = 0; i < n; ++i)
        for (int64_t d = 0; d < D; ++d) ref[i * D + d] = t.f[ids[i] * D + d];
      Add(Fmt("gather_rows %s n=%lld D=%lld", DTypeName(dt), (long long)n, (long long)D),
          [=, &t](Backend& be) {
            Mem mem(be);
            float* o = mem.Zeros(n * D);
            be.GatherRows(t.t, ids.data(), n, o);
            return mem.Get(o, n * D);
          },
          ref, 0.0, 0.0);
    }
  struct CR {
    const char* name;
    bool gather, scatter;
  };
  for (CR c : {CR{"plain", false, false}, CR{"gather", true, false}, CR{"scatter", false, true}, CR{"both", true, true}}) {
    const int64_t rows = 13, ld_src = 37, ld_dst = 41, width = 29, n = 6;
    const std::vector<float> src = Randn(rows * ld_src), dst0 = Randn(rows * ld_dst);
    const std::vector<int64_t> si = {12, 0, 5, 5, 7, 1}, di = {3, 11, 0, 9, 2, 6};
    std::vector<double> ref = ToD(dst0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < width; ++j)
        ref[(c.scatter ? di[i] : i) * ld_dst + j] = src[(c.gather ? si[i] : i) * ld_src + j];
    Add(Fmt("copy_rows %s n=%lld width=%lld", c.name, (long long)n, (long long)width),
        [=](Backend& be) {
          Mem mem(be);
          float* d = mem.Put(dst0);
          be.CopyRows(mem.Put(src), ld_src, c.gather ? si.data() : nullptr, d, ld_dst, c.scatter ? di.data() : nullptr,
                      n, width);
          return mem.Get(d, rows * ld_dst);
        },
        ref, 0.0, 0.0);
  }
}

void SampleCases() {
  for (int64_t V : {1, 7, 151936}) {
    std::vector<float> x = Randn(V);
    const int64_t best = V / 3;
    x[best] = 50.0f;
    if (V > best + 5) x[best + 5] = 50.0f;  // a tie: the lower index wins
    Add(Fmt("sample greedy V=%lld", (long long)V),
        [=](Backend& be) {
          Mem mem(be);
          std::vector<float> h = mem.Get(mem.Put(x), V);  // logits come back from the backend first
          std::mt19937_64 rng(7);
          return std::vector<float>{static_cast<float>(be.Sample(h.data(), V, SampleParams{}, rng))};
        },
        {static_cast<double>(best)}, 0.0, 0.0);
  }
}

}  // namespace

#include "backend_ops_kv_cases.h"

namespace {

struct Runner {
  int passed = 0, failed = 0;
  void Check(bool ok) { ok ? ++passed : ++failed; }
};

}  // namespace

// The op profile (starkv bench --profile): each op counted once under its shape's name, only while it
// is enabled, and taking the profile resets it (on a device: event pairs resolved after the stream).
void ProfileCases() {
  const HostWeight& W = Weight(DType::BF16, {16, 16}, 0.5f);
  const std::vector<float> x = Randn(8 * 16);
  Add("op_profile counts (matmul, matmul decode, add; 3 kinds; none after taking it)",
      [=, &W](Backend& be) {
        Mem mem(be);
        float* xp = mem.Put(x);
        float* y = mem.Zeros(8 * 16);
        be.TakeOpProfile();
        be.MatMul(xp, 8, W.t, nullptr, y);  // not enabled: not counted
        be.EnableOpProfile(true);
        be.MatMul(xp, 8, W.t, nullptr, y);
        be.MatMul(xp, 1, W.t, nullptr, y);
        be.MatMul(xp, 2, W.t, nullptr, y);
        be.Add(y, xp, 16);
        be.EnableOpProfile(false);
        be.Add(y, xp, 16);
        const std::vector<OpTime> prof = be.TakeOpProfile();
        auto calls = [&](const char* op) {
          for (const OpTime& t : prof)
            if (t.op == op) return static_cast<float>(t.calls) + (t.ms >= 0 ? 0.0f : 100.0f);
          return 0.0f;
        };
        return std::vector<float>{calls("matmul"), calls("matmul decode (M <= 4)"), calls("add"),
                                  static_cast<float>(prof.size()), static_cast<float>(be.TakeOpProfile().size())};
      },
      {1, 2, 1, 3, 0}, 0, 0);
}

int main() {
  MatMulCases();
  MatMulBf16Cases();
  NormCases();
  RowNormCases();
  RotaryCases();
  AttentionCases();
  PointwiseCases();
  GatherCopyCases();
  SampleCases();
  KvHookCases();
  ProfileCases();

  MemoryAccount acc;
  cpu::CpuOptions opt;
  opt.threads = 2;
  cpu::CpuBackend cpu(&acc, opt);
  std::vector<std::pair<std::string, std::unique_ptr<Backend>>> devs;  // (label, backend)
  std::string cuda_summary;
#ifdef STARKV_HAVE_CUDA
  std::string reason, gpu_name;
  if (cuda::CountDevices(&reason) > 0) {
    try {
      auto be = std::make_unique<cuda::CudaBackend>(&acc, 0);
      gpu_name = be->Describe();
      const bool blas = be->GemmName().rfind("cublas", 0) == 0;
      std::printf("CUDA backend: %s, gemm %s\n", gpu_name.c_str(), be->GemmName().c_str());
      devs.emplace_back("cuda", std::move(be));
      if (blas) {  // our own GEMM kernels too
        setenv("STARKV_NO_CUBLAS", "1", 1);
        auto own = std::make_unique<cuda::CudaBackend>(&acc, 0);
        unsetenv("STARKV_NO_CUBLAS");
        devs.emplace_back("cuda-own-gemm", std::move(own));
      }
    } catch (const std::exception& e) {
      reason = std::string("CUDA backend could not start: ") + e.what();
    }
  }
  if (devs.empty()) cuda_summary = "CUDA: compiled, not run (" + reason + ")";
#else
  cuda_summary = "CUDA: not compiled in (built without nvcc)";
#endif

  Runner r;
  int dev_cases = 0;
  // STARKV_OPS_FILTER=TEXT: only the cases whose name contains TEXT (for slow backends, e.g. the emulator).
  const char* filter = std::getenv("STARKV_OPS_FILTER");
  if (filter && *filter) {
    std::vector<Case> picked;
    for (Case& c : g_cases)
      if (c.name.find(filter) != std::string::npos) picked.push_back(std::move(c));
    std::printf("STARKV_OPS_FILTER=%s: %zu of %zu cases\n", filter, picked.size(), g_cases.size());
    g_cases = std::move(picked);
  }
  for (const Case& c : g_cases) {
    std::string line = Fmt("%-58s", c.name.c_str());
    bool ok = true;
    std::vector<float> out_cpu;
    try {
      out_cpu = c.run(cpu);
      const double e = NormErr(out_cpu, c.ref);
      const bool pass = e <= c.thr_cpu;
      ok = ok && pass;
      line += Fmt(" cpu %.2e (<= %.0e)%s", e, c.thr_cpu, pass ? "" : " FAIL");
    } catch (const std::exception& e) {
      ok = false;
      line += std::string(" cpu threw: ") + e.what();
    }
    for (auto& [label, be] : devs) {
      const bool own = label == "cuda-own-gemm";
      if (own && c.name.rfind("matmul", 0) != 0) continue;  // only the GEMM differs between the two
      const double thr = own && c.thr_dev_own >= 0 ? c.thr_dev_own : c.thr_dev;
      try {
        const double e = NormErr(c.run(*be), ToD(out_cpu));
        const bool pass = e <= thr && !out_cpu.empty();
        ok = ok && pass;
        line += Fmt("  %s %.2e (<= %.0e)%s", label.c_str(), e, thr, pass ? "" : " FAIL");
        ++dev_cases;
      } catch (const std::exception& e) {
        ok = false;
        line += "  " + label + " threw: " + e.what();
      }
    }
    std::printf("%s  %s\n", line.c_str(), ok ? "ok" : "FAILED");
    r.Check(ok);
  }
#ifdef STARKV_HAVE_CUDA
  if (!devs.empty()) cuda_summary = Fmt("CUDA: %d cases run on %s", dev_cases, gpu_name.c_str());
#endif
  std::printf("backend_ops_test: %zu cases on the CPU backend (vs double reference). %s\n", g_cases.size(),
              cuda_summary.c_str());
  std::printf("%d passed, %d failed\n", r.passed, r.failed);
  return r.failed == 0 ? 0 : 1;
}
