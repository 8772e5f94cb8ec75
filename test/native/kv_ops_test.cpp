// Op table of the KV-compression primitives (spec kv-compression.md 7.2): for each primitive and a
// table of shapes (odd lengths, windows 1/8/32, GQA ratios 1/2/7, head_dim 64/80/128, spans with one
// and many frames), the CPU path (the native/kv code and its shared STARKV_HD functions) is checked
// against a plain double-precision reference written here; when the CUDA kernels are compiled in
// (STARKV_HAVE_CUDA) and a device is present, each kernel is run and compared with the CPU path
// (normalised error for scores, exact sets for top-k and compaction). One line per case, a summary
// that says plainly whether CUDA ran, non-zero exit on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iterator>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "kv/compact.h"
#include "kv/kernels.h"
#include "kv/kv_method.h"
#include "kv/methods.h"
#include "kv/snapkv_core.h"
#include "kv/starkv_parts.h"

#ifdef STARKV_HAVE_CUDA
#include "../../kernels/cuda_backend.h"  // CudaErrorText
#include "../../kernels/kv/kv_kernels.h"
#endif

using namespace starkv::kv;
using Vf = std::vector<float>;
using Vd = std::vector<double>;
using Vi = std::vector<int64_t>;

namespace {

// ---------------------------------------------------------------- reporting
struct Report {
  int cpu_cases = 0, gpu_cases = 0, failures = 0;
  void Line(const char* side, const std::string& what, bool ok, const std::string& detail) {
    (std::string(side) == "cuda" ? gpu_cases : cpu_cases)++;
    if (!ok) ++failures;
    std::printf("%s [%-4s] %-58s %s\n", ok ? "ok  " : "FAIL", side, what.c_str(), detail.c_str());
  }
};
Report R;

std::string Fmt(const char* f, double a) {
  char b[96];
  std::snprintf(b, sizeof b, f, a);
  return b;
}
std::string Str(int64_t v) { return std::to_string(v); }

// max |a - b| / max(max |b|, tiny): error normalised by the reference's scale.
template <typename A, typename B>
double NormErr(const A& a, const B& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (std::isnan(x) != std::isnan(y)) return INFINITY;
    if (std::isnan(x)) continue;
    num = std::max(num, std::fabs(x - y));
    den = std::max(den, std::fabs(y));
  }
  return a.size() != b.size() ? INFINITY : num / std::max(den, 1e-30);
}
void CheckErr(const char* side, const std::string& what, double err, double tol) {
  R.Line(side, what, err <= tol, "norm err " + Fmt("%.2e", err) + " (tol " + Fmt("%.0e", tol) + ")");
}
template <typename T>
void CheckSame(const char* side, const std::string& what, const std::vector<T>& a, const std::vector<T>& b) {
  size_t diff = a.size() == b.size() ? 0 : std::max(a.size(), b.size());
  if (!diff)
    for (size_t i = 0; i < a.size(); ++i) diff += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  R.Line(side, what, diff == 0, diff ? Str(static_cast<int64_t>(diff)) + " elements differ" : "identical");
}

std::mt19937 rng(20261124);
Vf Randn(size_t n, float sd = 1.0f) {
  std::normal_distribution<float> nd(0.0f, sd);
  Vf v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}
Vf Uniform(size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> ud(lo, hi);
  Vf v(n);
  for (auto& x : v) x = ud(rng);
  return v;
}

// ---------------------------------------------------------------- CUDA side
#ifdef STARKV_HAVE_CUDA
namespace cu = starkv::cuda::kv;
struct Gpu {
  bool ok = false;
  std::string reason, name;
} gpu;

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  Dev() = default;
  explicit Dev(size_t count) : p(static_cast<T*>(cu::DeviceAlloc(sizeof(T) * std::max<size_t>(count, 1)))), n(count) {}
  explicit Dev(const std::vector<T>& h) : Dev(h.size()) { cu::CopyToDevice(p, h.data(), sizeof(T) * h.size()); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { cu::DeviceFree(p); }
  std::vector<T> Get() const {
    std::vector<T> h(n);
    cu::Synchronize(nullptr);
    cu::CopyToHost(h.data(), p, sizeof(T) * n);
    return h;
  }
};
// Runs one CUDA case; an exception is a failed case, never a crash.
void OnGpu(const std::string& what, const std::function<void()>& body) {
  if (!gpu.ok) return;
  try {
    body();
  } catch (const std::exception& e) {
    R.Line("cuda", what, false, std::string("threw: ") + e.what());
  }
}
#endif

// ---------------------------------------------------------------- layer builder
struct Layer {
  int H, Hkv, d;
  int64_t L, cap, q_rows;
  Vf keys, queries, hidden;
  int hidden_size = 0;
  LayerInputs in;
  Layer(int H_, int Hkv_, int d_, int64_t L_, int64_t q_rows_, int64_t spare = 3)
      : H(H_), Hkv(Hkv_), d(d_), L(L_), cap(L_ + spare), q_rows(q_rows_) {
    keys = Randn(static_cast<size_t>(Hkv) * cap * d);
    queries = Randn(static_cast<size_t>(H) * q_rows * d);
    in.num_heads = H;
    in.num_kv_heads = Hkv;
    in.head_dim = d;
    in.seq_len = L;
    in.keys = keys.data();
    in.kv_capacity = cap;
    in.queries = queries.data();
    in.q_rows = q_rows;
  }
  void Hidden(int hs) {
    hidden_size = hs;
    hidden = Randn(static_cast<size_t>(L) * hs);
    for (int64_t i = 0; i < L; ++i) {  // vary the row norms
      const float s = 0.5f + static_cast<float>(i % 7) * 0.25f;
      for (int c = 0; c < hs; ++c) hidden[i * hs + c] *= s;
    }
    in.hidden = hidden.data();
    in.hidden_row0 = 0;
    in.hidden_rows = L;
    in.hidden_size = hs;
  }
  const float* K(int g, int64_t j) const { return keys.data() + (static_cast<int64_t>(g) * cap + j) * d; }
  const float* Q(int h, int64_t slot) const { return queries.data() + (static_cast<int64_t>(h) * q_rows + (slot - (L - q_rows))) * d; }
};

double DotD(const float* a, const float* b, int d) {
  double s = 0.0;
  for (int i = 0; i < d; ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Double reference of the window rows: probabilities of row slot s over keys [0, s].
Vd RefRow(const Layer& l, int h, int64_t s) {
  const int G = l.H / l.Hkv;
  Vd p(s + 1);
  double m = -INFINITY;
  for (int64_t j = 0; j <= s; ++j) m = std::max(m, p[j] = DotD(l.Q(h, s), l.K(h / G, j), l.d) / std::sqrt(double(l.d)));
  double z = 0.0;
  for (auto& x : p) z += (x = std::exp(x - m));
  for (auto& x : p) x /= z;
  return p;
}

#ifdef STARKV_HAVE_CUDA
// The window kernels' arguments for the layer's last `rows` query rows, queries and keys on the device.
cu::WindowArgs DeviceWindow(const Layer& l, int64_t rows, const Dev<float>& dq, const Dev<float>& dk) {
  cu::WindowArgs a;
  a.queries = dq.p;
  a.q_rows = l.q_rows;
  a.keys = dk.p;
  a.kv_capacity = l.cap;
  a.num_heads = l.H;
  a.num_kv_heads = l.Hkv;
  a.head_dim = l.d;
  a.seq_len = l.L;
  a.rows = rows;
  return a;
}
#endif

// ================================================================ 1. window colsum / VL-Cache zeros
#ifdef STARKV_HAVE_CUDA
// Error messages (host code, no device needed): a fault after which the process's CUDA context is lost
// says so, and that only a restart helps; an error the engine recovers from (out of memory) does not.
void TestErrorText() {
  const std::string lost = starkv::cuda::CudaErrorText(700), oom = starkv::cuda::CudaErrorText(2);
  R.Line("cpu", "CUDA error text: illegal address (700): GPU lost, restart", lost.find("restart starkv") != std::string::npos, lost);
  R.Line("cpu", "CUDA error text: out of memory (2): no restart", oom.find("restart") == std::string::npos, oom);
}
#endif

void TestWindow() {
  struct C { int64_t L, W; int H, Hkv, d; };
  const C cases[] = {{37, 1, 2, 2, 64}, {129, 8, 4, 2, 80}, {301, 32, 14, 2, 128}, {65, 8, 7, 1, 64},
                     {8, 8, 2, 1, 64},  {1000, 8, 4, 4, 128}, {97, 32, 7, 7, 80},
                     {70, 8, 2, 1, 190}};  // d = 190: the key tile fits 48 KB, with the static shared not
  for (const C& c : cases) {
    Layer l(c.H, c.Hkv, c.d, c.L, c.W);
    const std::string tag = "window_colsum L=" + Str(c.L) + " w=" + Str(c.W) + " H=" + Str(c.H) + "/" + Str(c.Hkv) +
                            " d=" + Str(c.d);
    Vf cpu;
    WindowAttentionSums(l.in, c.W, cpu);
    const int64_t P = c.L - c.W;
    Vd ref(static_cast<size_t>(c.H) * P, 0.0);
    for (int h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.W; ++i) {
        const Vd p = RefRow(l, h, c.L - c.W + i);
        for (int64_t t = 0; t < P; ++t) ref[h * P + t] += p[t];
      }
    CheckErr("cpu", tag, P ? NormErr(cpu, ref) : 0.0, 2e-6);
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dq(l.queries), dk(l.keys), ds(std::max<int64_t>(P * c.H, 1));
      const cu::WindowArgs a = DeviceWindow(l, c.W, dq, dk);
      Dev<char> scratch(cu::WindowScratchBytes(a));
      cu::WindowColsum(a, ds.p, scratch.p, nullptr);
      Vf g = ds.Get();
      g.resize(cpu.size());
      CheckErr("cuda", tag, P ? NormErr(g, cpu) : 0.0, 5e-6);
    });
#endif
  }
  // H2O's accumulated attention: every query row (here q_rows of them) adds to every key it sees
  struct A { int64_t L, rows; int H, Hkv, d; };
  const A acases[] = {{37, 37, 2, 2, 64}, {129, 64, 4, 2, 80}, {301, 64, 14, 2, 128}, {65, 1, 7, 1, 64},
                      {200, 13, 7, 7, 80}};
  for (const A& c : acases) {
    Layer l(c.H, c.Hkv, c.d, c.L, c.rows);
    const std::string tag = "accumulated_colsum L=" + Str(c.L) + " rows=" + Str(c.rows) + " H=" + Str(c.H) + "/" +
                            Str(c.Hkv) + " d=" + Str(c.d);
    Vf cpu;
    AccumulatedAttentionSums(l.in, cpu);
    Vd ref(static_cast<size_t>(c.H) * c.L, 0.0);
    for (int h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.rows; ++i) {
        const Vd p = RefRow(l, h, c.L - c.rows + i);  // keys [0, slot]
        for (size_t t = 0; t < p.size(); ++t) ref[h * c.L + t] += p[t];
      }
    CheckErr("cpu", tag, NormErr(cpu, ref), 2e-6);
    if (c.rows < c.L) {  // the past slots' sums are the window sums, bit for bit
      Vf win, head;
      WindowAttentionSums(l.in, c.rows, win);
      const int64_t P = c.L - c.rows;
      for (int h = 0; h < c.H; ++h) head.insert(head.end(), cpu.begin() + h * c.L, cpu.begin() + h * c.L + P);
      CheckSame("cpu", tag + " past = window sums", head, win);
    }
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dq(l.queries), dk(l.keys), ds(static_cast<size_t>(c.H) * c.L);
      const cu::WindowArgs a = DeviceWindow(l, c.rows, dq, dk);
      Dev<char> scratch(cu::WindowScratchBytes(a));
      cu::AccumulatedColsum(a, ds.p, scratch.p, nullptr);
      CheckErr("cuda", tag, NormErr(ds.Get(), cpu), 5e-6);
    });
#endif
  }
  // VL-Cache sparsity over post-vision rows (L ~ 100 puts many probabilities near the 0.01 threshold)
  struct V { int64_t L, rows; int H, Hkv, d; };
  const V vcases[] = {{101, 5, 4, 2, 64}, {77, 1, 7, 1, 80}, {257, 33, 14, 2, 128}, {71, 5, 2, 1, 191}};  // 191: as above
  for (const V& c : vcases) {
    Layer l(c.H, c.Hkv, c.d, c.L, c.rows);
    l.in.last_vision_index = c.L - c.rows;
    MethodParams p = VlCacheMethod().Defaults();
    const double gamma = VlCacheSparsity(l.in, p);
    const std::string tag = "vlcache_zero_counts L=" + Str(c.L) + " rows=" + Str(c.rows) + " H=" + Str(c.H) + "/" +
                            Str(c.Hkv) + " d=" + Str(c.d);
    double gsum = 0.0;
    int64_t valid_all = 0;
    for (int h = 0; h < c.H; ++h) {
      int64_t above = 0, valid = 0;
      for (int64_t i = 0; i < c.rows; ++i) {
        const Vd pr = RefRow(l, h, c.L - c.rows + i);
        for (double x : pr) above += x > p.sparsity_threshold;
        valid += static_cast<int64_t>(pr.size());
      }
      gsum += 1.0 - double(above) / double(valid);
      valid_all = valid;
    }
    const double ref = gsum / c.H;
    // a probability within fp32 rounding of the threshold may count differently: allow 2 per head
    R.Line("cpu", tag, std::fabs(gamma - ref) <= 2.0 / valid_all,
           "gamma " + Fmt("%.6f", gamma) + " ref " + Fmt("%.6f", ref));
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dq(l.queries), dk(l.keys);
      Dev<int64_t> dz(static_cast<size_t>(c.H) * c.rows);
      const cu::WindowArgs a = DeviceWindow(l, c.rows, dq, dk);
      Dev<char> scratch(cu::WindowScratchBytes(a));
      cu::WindowZeroCounts(a, static_cast<float>(p.sparsity_threshold), dz.p, scratch.p, nullptr);
      const Vi z = dz.Get();
      const double g = VlCacheGammaFromZeros(z, c.H, c.rows, c.L);
      R.Line("cuda", tag, std::fabs(g - gamma) <= 1.0 / valid_all, "gamma " + Fmt("%.6f", g) + " cpu " + Fmt("%.6f", gamma));
    });
#endif
  }
}

// ================================================================ 2. pooling, group reduce, argmax
void TestPoolGroup() {
  for (int64_t n : {1, 2, 7, 37, 1001})
    for (int kernel : {1, 3, 5, 7, 8})
      for (Pooling pool : {Pooling::Avg, Pooling::Max}) {
        const int rows = 3;
        const Vf x = Randn(static_cast<size_t>(rows) * n);
        Vf cpu;
        PoolRows(x, rows, n, kernel, pool, cpu);
        Vd ref(cpu.size());
        const int64_t half = kernel / 2;
        for (int r = 0; r < rows; ++r)
          for (int64_t t = 0; t < n; ++t) {
            double s = 0.0, m = -INFINITY;
            for (int64_t j = t - half; j < t - half + kernel; ++j) {
              const double v = (j >= 0 && j < n) ? x[r * n + j] : 0.0;  // zero padding (avg)
              s += v;
              if (j >= 0 && j < n) m = std::max(m, v);  // -inf padding (max)
            }
            ref[r * n + t] = pool == Pooling::Avg ? s / kernel : m;
          }
        const std::string tag = std::string("pool1d ") + (pool == Pooling::Avg ? "avg" : "max") + " n=" + Str(n) +
                                " k=" + Str(kernel);
        CheckErr("cpu", tag, NormErr(cpu, ref), pool == Pooling::Avg ? 1e-6 : 0.0);
#ifdef STARKV_HAVE_CUDA
        OnGpu(tag, [&] {
          Dev<float> dx(x), dout(x.size());
          cu::Pool1d(dx.p, rows, n, kernel, pool == Pooling::Max, dout.p, nullptr);
          CheckSame("cuda", tag, dout.Get(), cpu);
        });
#endif
      }
  struct C { int H, Hkv; int64_t P; };
  for (const C& c : {C{4, 4, 37}, C{4, 2, 101}, C{28, 4, 1000}, C{14, 2, 1}, C{7, 1, 65}}) {
    const int G = c.H / c.Hkv;
    Vf x = Randn(static_cast<size_t>(c.H) * c.P);
    for (int64_t t = 0; t < c.P; t += 3)  // exact ties across groups: argmax must pick the lowest group
      for (int h = 0; h < c.H; ++h) x[h * c.P + t] = 0.25f * static_cast<float>((h % G) % 2);
    Vf mean, mx(static_cast<size_t>(c.Hkv) * c.P);
    GroupMean(x, c.H, c.Hkv, c.P, mean);
    for (int g = 0; g < c.Hkv; ++g)
      for (int64_t t = 0; t < c.P; ++t) mx[g * c.P + t] = k::GroupMaxAt(x.data() + g * G * c.P + t, c.P, G);
    std::vector<int> am(c.P);
    for (int64_t t = 0; t < c.P; ++t) am[t] = k::ArgmaxGroupAt(mean.data() + t, c.P, c.Hkv);
    Vd rmean(mean.size()), rmax(mean.size());
    std::vector<int> ram(c.P);
    for (int g = 0; g < c.Hkv; ++g)
      for (int64_t t = 0; t < c.P; ++t) {
        double s = 0.0, m = -INFINITY;
        for (int j = 0; j < G; ++j) {
          s += x[(g * G + j) * c.P + t];
          m = std::max(m, double(x[(g * G + j) * c.P + t]));
        }
        rmean[g * c.P + t] = s / G;
        rmax[g * c.P + t] = m;
      }
    for (int64_t t = 0; t < c.P; ++t) {
      int b = 0;
      for (int g = 1; g < c.Hkv; ++g)
        if (mean[g * c.P + t] > mean[b * c.P + t]) b = g;  // over the fp32 means (first maximum wins)
      ram[t] = b;
    }
    const std::string sh = " H=" + Str(c.H) + "/" + Str(c.Hkv) + " P=" + Str(c.P);
    CheckErr("cpu", "group_reduce mean" + sh, NormErr(mean, rmean), 1e-7);
    CheckErr("cpu", "group_reduce max" + sh, NormErr(mx, rmax), 0.0);
    CheckSame("cpu", "argmax_over_groups" + sh, am, ram);
#ifdef STARKV_HAVE_CUDA
    OnGpu("group_reduce" + sh, [&] {
      Dev<float> dx(x), dm(mean.size()), dmx(mean.size()), dmean(mean);
      Dev<int> da(static_cast<size_t>(c.P));
      cu::GroupReduce(dx.p, c.H, c.Hkv, c.P, false, dm.p, nullptr);
      cu::GroupReduce(dx.p, c.H, c.Hkv, c.P, true, dmx.p, nullptr);
      cu::ArgmaxOverGroups(dmean.p, c.Hkv, c.P, da.p, nullptr);
      CheckSame("cuda", "group_reduce mean" + sh, dm.Get(), mean);
      CheckSame("cuda", "group_reduce max" + sh, dmx.Get(), mx);
      CheckSame("cuda", "argmax_over_groups" + sh, da.Get(), am);
    });
#endif
  }
}

// ================================================================ 3. saliency
void TestSaliency() {
  struct C { int64_t start, n; int hs; };
  for (const C& c : {C{3, 1, 64}, C{0, 2, 100}, C{5, 37, 128}, C{10, 2691, 64}, C{1, 300, 3584}}) {
    Layer l(2, 1, 64, c.start + c.n + 4, 1, 0);
    l.Hidden(c.hs);
    const double alpha = 2.0, T = 3.5;
    const Vf cpu = SaliencyBoost(l.in, Span{c.start, c.start + c.n}, alpha, T);
    Vd r(c.n), ref(c.n);
    double mean = 0.0;
    for (int64_t i = 0; i < c.n; ++i) {
      double s = 0.0;
      for (int j = 0; j < c.hs; ++j) s += double(l.hidden[(c.start + i) * c.hs + j]) * l.hidden[(c.start + i) * c.hs + j];
      mean += (r[i] = std::sqrt(s));
    }
    mean /= c.n;
    double var = 0.0;
    for (double v : r) var += (v - mean) * (v - mean);
    const double sd = c.n > 1 ? std::sqrt(var / (c.n - 1)) : 0.0;
    double zmax = -INFINITY, tot = 0.0;
    for (int64_t i = 0; i < c.n; ++i) zmax = std::max(zmax, ref[i] = (r[i] - mean) / (sd + 1e-8) / T);
    for (auto& z : ref) tot += (z = std::exp(z - zmax));
    for (auto& z : ref) z = alpha * z / tot;
    const std::string tag = "saliency n=" + Str(c.n) + " hidden=" + Str(c.hs);
    CheckErr("cpu", tag, NormErr(cpu, ref), 1e-5);
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dh(l.hidden), db(static_cast<size_t>(c.n));
      Dev<char> scratch(cu::SaliencyScratchBytes(c.n));
      cu::SaliencyBoost(dh.p + c.start * c.hs, c.n, c.hs, c.hs, alpha, T, db.p, scratch.p, nullptr);
      CheckErr("cuda", tag, NormErr(db.Get(), cpu), 1e-6);
      // add the boost to 3 rows of scores over a past that cuts the span
      const int64_t P = c.start + c.n / 2 + 1;
      Vf scores = Randn(3 * P), expect = scores;
      for (int rr = 0; rr < 3; ++rr)
        for (int64_t i = 0; i < c.n; ++i)
          if (c.start + i < P) expect[rr * P + c.start + i] += cpu[i];
      Dev<float> dsc(scores), dcb(cpu);
      cu::AddSpanBoost(dsc.p, 3, P, c.start, dcb.p, c.n, nullptr);
      CheckSame("cuda", "add_span_boost n=" + Str(c.n) + " P=" + Str(P), dsc.Get(), expect);
    });
#endif
  }
}

// ================================================================ 4. spatial MI
double RefMi(const Vf& s, int64_t n, int64_t gh, int64_t gw, int vb, int rb, int cb) {
  if (n <= 1) return 0.0;
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += std::max(0.0, double(s[i]));
  if (!(sum > 1e-12)) return 0.0;
  // ranks: ascending by value, ties by position
  std::vector<std::pair<double, int64_t>> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = {std::max(0.0, double(s[i])) / sum, i};
  std::sort(v.begin(), v.end());
  std::vector<int> A(n), Y(n);
  for (int64_t r = 0; r < n; ++r) A[v[r].second] = std::min(vb - 1, static_cast<int>(std::floor(double(r) * vb / n)));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t row = i / gw, col = i % gw;
    const int yb = std::min(rb - 1, std::max(0, static_cast<int>(std::floor((row + 0.5) / gh * rb))));
    const int xb = std::min(cb - 1, std::max(0, static_cast<int>(std::floor((col + 0.5) / gw * cb))));
    Y[i] = yb * cb + xb;
  }
  std::vector<double> J(static_cast<size_t>(vb) * rb * cb, 0.0), pa(vb, 0.0), py(static_cast<size_t>(rb) * cb, 0.0);
  for (int64_t i = 0; i < n; ++i) J[A[i] * rb * cb + Y[i]] += 1.0 / n;
  for (int a = 0; a < vb; ++a)
    for (int y = 0; y < rb * cb; ++y) pa[a] += J[a * rb * cb + y], py[y] += J[a * rb * cb + y];
  int ua = 0, uy = 0;
  for (double x : pa) ua += x > 0;
  for (double x : py) uy += x > 0;
  if (ua <= 1 || uy <= 1) return 0.0;
  double mi = 0.0;
  for (int a = 0; a < vb; ++a)
    for (int y = 0; y < rb * cb; ++y) {
      const double j = J[a * rb * cb + y];
      if (j > 0) mi += j * (std::log(j + 1e-12) - std::log(pa[a] * py[y] + 1e-12));
    }
  return std::max(0.0, mi);
}

void TestMi() {
  struct C { int64_t n; int groups; int64_t gh, gw; const char* kind; };
  const C cases[] = {{1, 1, 0, 0, "random"},   {2, 2, 0, 0, "random"},   {5, 4, 0, 0, "random"},
                     {37, 4, 0, 0, "spatial"}, {144, 2, 0, 0, "random"}, {1000, 4, 25, 40, "spatial"},
                     {2691, 4, 0, 0, "spatial"}, {50, 2, 0, 0, "zeros"}, {64, 2, 0, 0, "ties"}};
  MethodParams p = StarKvMethod().Defaults();
  for (const C& c : cases) {
    int64_t gh = c.gh, gw = c.gw;
    if (!gh) PseudoGrid(c.n, gh, gw);
    const int64_t start = 3, ld = start + c.n + 5;
    Vf S = Randn(static_cast<size_t>(c.groups) * ld);
    for (int g = 0; g < c.groups; ++g)
      for (int64_t i = 0; i < c.n; ++i) {
        float& x = S[g * ld + start + i];
        if (std::string(c.kind) == "spatial") x = std::fabs(x) * 0.1f + static_cast<float>((i % gw) * (g + 1)) / gw;
        if (std::string(c.kind) == "zeros") x = -std::fabs(x);
        if (std::string(c.kind) == "ties") x = static_cast<float>(i % 4);
      }
    std::vector<double> cpu(c.groups), ref(c.groups);
    double err = 0.0;
    for (int g = 0; g < c.groups; ++g) {
      cpu[g] = SpatialMi(S.data() + g * ld + start, c.n, gh, gw, p);
      Vf row(S.begin() + g * ld + start, S.begin() + g * ld + start + c.n);
      ref[g] = RefMi(row, c.n, gh, gw, p.mi_value_bins, p.mi_row_bins, p.mi_col_bins);
      err = std::max(err, std::fabs(cpu[g] - ref[g]));
    }
    const std::string tag = "span_hist_mi n=" + Str(c.n) + " groups=" + Str(c.groups) + " grid=" + Str(gh) + "x" +
                            Str(gw) + " " + c.kind;
    R.Line("cpu", tag, err <= 1e-9, "max |dMI| " + Fmt("%.2e", err) + " (MI[0] " + Fmt("%.4f", cpu[0]) + ")");
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dS(S);
      Dev<double> dmi(static_cast<size_t>(c.groups));
      Dev<char> scratch(cu::SpanHistMiScratchBytes(c.groups, c.n));
      cu::SpanHistMi(dS.p, ld, c.groups, start, c.n, gh, gw, p.mi_value_bins, p.mi_row_bins, p.mi_col_bins, dmi.p,
                     scratch.p, nullptr);
      const std::vector<double> g = dmi.Get();
      double e = 0.0;
      for (int i = 0; i < c.groups; ++i) e = std::max(e, std::fabs(g[i] - cpu[i]));
      R.Line("cuda", tag, e <= 1e-12, "max |dMI| vs cpu " + Fmt("%.2e", e));
    });
#endif
  }
}

// ================================================================ 5a. GUI-KV residuals (+ bottom-k)
void TestLowRank() {
  struct C { int H, Hkv, d; int64_t n_cur, n_prev_frames, frame; int rank; bool dependent; };
  const C cases[] = {{2, 1, 64, 40, 1, 20, 32, false},  {4, 2, 80, 13, 2, 17, 32, false},
                     {14, 2, 128, 50, 3, 31, 8, false}, {7, 1, 64, 40, 1, 25, 1, false},
                     {4, 2, 64, 40, 2, 9, 32, true},
                     // rank above 32: the CUDA residual kernel's larger coefficient array
                     {4, 2, 64, 60, 2, 21, 48, false}};
  for (const C& c : cases) {
    // layout: text [0,4), frames of `frame` tokens each (4 gap), current frame, text tail
    std::vector<Span> spans;
    int64_t pos = 4;
    for (int64_t f = 0; f < c.n_prev_frames; ++f, pos += c.frame + 4) spans.push_back({pos, pos + c.frame});
    spans.push_back({pos, pos + c.n_cur});
    const int64_t L = pos + c.n_cur + 12;
    Layer l(c.H, c.Hkv, c.d, L, 8);
    if (c.dependent)  // repeat current-frame keys: Gram-Schmidt must drop dependent directions
      for (int g = 0; g < c.Hkv; ++g)
        for (int64_t i = 1; i < c.n_cur; i += 2)
          std::memcpy(l.keys.data() + (g * l.cap + pos + i) * c.d, l.K(g, pos + i - 1), sizeof(float) * c.d);
    l.Hidden(16);
    l.in.spans = spans;
    MethodParams p = GuiKvMethod().Defaults();
    p.alpha = 0;
    p.qr_rank = c.rank;
    p.debug = true;
    LayerState st;
    Selection sel;
    Telemetry tel;
    GuiKvMethod().Compress(l.in, Budget{30.0}, p, st, sel, tel);
    const DebugArray *res = nullptr, *zer = nullptr, *meta = nullptr;
    for (const auto& a : tel.arrays) {
      if (a.name == "temporal_qr_residual_norms") res = &a;
      if (a.name == "temporal_qr_zeroed_positions") zer = &a;
      if (a.name == "temporal_qr_meta") meta = &a;
    }
    const std::string tag = "lowrank_residual Hkv=" + Str(c.Hkv) + " d=" + Str(c.d) + " r=" + Str(c.rank) +
                            " prev=" + Str(c.n_prev_frames) + "x" + Str(c.frame) + (c.dependent ? " dependent" : "");
    if (!res || !zer || !meta) {
      R.Line("cpu", tag, false, "GUI-KV telemetry lacks the residual arrays");
      continue;
    }
    const int64_t n_prev = res->shape[1], r = static_cast<int64_t>(meta->data[0]), nz = static_cast<int64_t>(meta->data[1]);
    (void)nz;  // used by the CUDA cases
    const int G = c.H / c.Hkv;
    Vi positions;
    for (size_t f = 0; f + 1 < spans.size(); ++f)
      for (int64_t j = spans[f].start; j < spans[f].end; ++j) positions.push_back(j);
    // reference: long-double Gram-Schmidt (two passes) of the first r current keys, projection residual
    Vf cpu_kv(static_cast<size_t>(c.Hkv) * n_prev);
    Vd ref(cpu_kv.size());
    for (int g = 0; g < c.Hkv; ++g) {
      std::vector<std::vector<long double>> B;
      for (int64_t i = 0; i < r; ++i) {
        std::vector<long double> v(l.K(g, spans.back().start + i), l.K(g, spans.back().start + i) + c.d);
        long double n0 = 0;
        for (auto x : v) n0 += x * x;
        for (int pass = 0; pass < 2; ++pass)
          for (const auto& b : B) {
            long double dt = 0;
            for (int j = 0; j < c.d; ++j) dt += b[j] * v[j];
            for (int j = 0; j < c.d; ++j) v[j] -= dt * b[j];
          }
        long double n = 0;
        for (auto x : v) n += x * x;
        if (std::sqrt(n) <= 1e-9L * std::sqrt(n0)) continue;
        for (auto& x : v) x /= std::sqrt(n);
        B.push_back(v);
      }
      for (int64_t i = 0; i < n_prev; ++i) {
        std::vector<long double> v(l.K(g, positions[i]), l.K(g, positions[i]) + c.d);
        for (const auto& b : B) {
          long double dt = 0;
          for (int j = 0; j < c.d; ++j) dt += b[j] * static_cast<long double>(l.K(g, positions[i])[j]);
          for (int j = 0; j < c.d; ++j) v[j] -= dt * b[j];
        }
        long double n = 0;
        for (auto x : v) n += x * x;
        ref[g * n_prev + i] = static_cast<double>(std::sqrt(n));
        cpu_kv[g * n_prev + i] = res->data[(static_cast<int64_t>(g) * G) * n_prev + i];  // first head of the group
      }
    }
    CheckErr("cpu", tag, NormErr(cpu_kv, ref), 1e-5);
    // bottom-nz of the CPU residuals vs the CPU's zeroed positions (sorted)
    std::vector<Vi> cpu_zero(c.Hkv);
    for (int g = 0; g < c.Hkv; ++g) {
      const int64_t m = zer->shape[1];
      for (int64_t s = 0; s < m; ++s) cpu_zero[g].push_back(static_cast<int64_t>(zer->data[(g * G) * m + s]));
    }
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<float> dk(l.keys), dres(cpu_kv.size()), dcpu(cpu_kv);
      Dev<int64_t> dpos(positions), dsel(static_cast<size_t>(c.Hkv) * std::max<int64_t>(nz, 1));
      Dev<char> scratch(cu::LowRankScratchBytes(c.Hkv, static_cast<int>(r), c.d));
      cu::LowRankResidual(dk.p, l.cap, c.Hkv, c.d, spans.back().start, static_cast<int>(r), dpos.p, n_prev, dres.p,
                          scratch.p, nullptr);
      CheckErr("cuda", tag, NormErr(dres.Get(), cpu_kv), 1e-5);
      if (nz > 0) {
        cu::TopKRows(dcpu.p, c.Hkv, n_prev, n_prev, nullptr, nz, true, dsel.p, nz, nullptr);
        const Vi s = dsel.Get();
        bool same = true;
        for (int g = 0; g < c.Hkv; ++g) {
          Vi z;
          for (int64_t i = 0; i < std::min(nz, n_prev); ++i) z.push_back(positions[s[g * nz + i]]);
          std::sort(z.begin(), z.end());
          same = same && z == cpu_zero[g];
        }
        R.Line("cuda", "bottomk n_zero=" + Str(nz) + " of " + Str(n_prev) + " Hkv=" + Str(c.Hkv), same,
               same ? "same sets as the CPU" : "sets differ");
      }
    });
#endif
  }
}

// ================================================================ 5b. temporal EMA, frame ages, fuse
void TestTemporalFuse() {
  struct C { int Hkv; int64_t P, frames, frame; };
  for (const C& c : {C{1, 40, 2, 9}, C{4, 301, 3, 37}, C{2, 1000, 5, 101}, C{4, 61, 1, 20}}) {
    std::vector<Span> spans;
    int64_t pos = 3;
    for (int64_t f = 0; f < c.frames; ++f, pos += c.frame + 2) spans.push_back({pos, std::min(pos + c.frame, c.P)});
    const Span cur = spans.back();
    const int64_t n = cur.end - cur.start;
    MethodParams p = StarKvMethod().Defaults();
    LayerState st;
    Telemetry tel;
    std::vector<int> gstar(c.P);
    Vf S1 = Uniform(static_cast<size_t>(c.Hkv) * c.P, -0.05f, 1.0f), S2 = Uniform(S1.size(), -0.05f, 1.0f);
    for (int64_t t = 0; t < c.P; ++t) gstar[t] = k::ArgmaxGroupAt(S1.data() + t, c.P, c.Hkv);
    // CPU path: two calls (no EMA yet, then EMA) of the STaR-KV temporal step
    st.temporal_step = 1;
    Vf scaled1(c.P, 1.0f), scaled2(c.P, 1.0f), D1, D2;
    TemporalDiscount(scaled1, S1, gstar, c.Hkv, c.P, spans, p, st, tel, &D1);
    const Vf ema1 = st.pattern_ema, stab1 = tel.stability;
    st.temporal_step = 2;
    TemporalDiscount(scaled2, S2, gstar, c.Hkv, c.P, spans, p, st, tel, &D2);
    const Vf ema2 = st.pattern_ema, stab2 = tel.stability;
    const std::string sh = " Hkv=" + Str(c.Hkv) + " P=" + Str(c.P) + " frames=" + Str(c.frames);
    if (c.frames >= 2) {
      // double reference of the EMA and stabilities
      Vd rema(static_cast<size_t>(c.Hkv) * n), rstab(c.Hkv);
      for (int call = 0; call < 2; ++call) {
        const Vf& S = call ? S2 : S1;
        for (int g = 0; g < c.Hkv; ++g) {
          double sum = 0, dot = 0, na = 0, nm = 0;
          for (int64_t i = 0; i < n; ++i) sum += std::max(0.0, double(S[g * c.P + cur.start + i]));
          for (int64_t i = 0; i < n; ++i) {
            const double a = std::max(0.0, double(S[g * c.P + cur.start + i])) / std::max(sum, 1e-8);
            double& m = rema[g * n + i];
            m = call ? p.temporal_rho * m + (1 - p.temporal_rho) * a : a;
            dot += a * m, na += a * a, nm += m * m;
          }
          rstab[g] = std::min(1.0, std::max(0.0, dot / (std::sqrt(na) * std::sqrt(nm))));
        }
      }
      CheckErr("cpu", "temporal_ema pattern" + sh, NormErr(ema2, rema), 1e-6);
      CheckErr("cpu", "temporal_ema stability" + sh, NormErr(stab2, rstab), 1e-6);
    } else {
      R.Line("cpu", "temporal_ema single frame (no discount)" + sh, st.pattern_ema.empty() && D1.empty(),
             "no EMA, no discount, as the reference");
    }
    // frame ages and fused score: CPU = the shared functions the STaR-KV method calls
    Vf age(c.P, 0.0f);
    for (size_t i = 0; i < spans.size(); ++i)
      for (int64_t t = spans[i].start; t < spans[i].end; ++t) age[t] = k::FrameAge(static_cast<int64_t>(i), c.frames);
    const int rows = 3;
    const Vf base = Uniform(static_cast<size_t>(rows) * c.P, 0.0f, 0.2f), w = Uniform(c.Hkv, 0.1f, 0.5f);
    const Vf stab = stab1.empty() ? Vf(c.Hkv, 1.0f) : stab1;
    const float lambda = 0.35f, inv_t = 1.0f / 1.1f;
    const bool apply = c.frames >= 2;
    Vf fused(base.size());
    Vd rf(base.size());
    for (int r = 0; r < rows; ++r)
      for (int64_t t = 0; t < c.P; ++t) {
        const int g = gstar[t];
        const float dd = k::TemporalDiscount(age[t], stab[g], float(p.temporal_delta), 0.0f, 0.0f);
        fused[r * c.P + t] = k::FuseScore(base[r * c.P + t], w[g], c.Hkv, lambda, apply, dd, true, inv_t);
        double x = base[r * c.P + t] * ((1.0 - lambda) + lambda * w[g] * c.Hkv);
        if (apply) x *= std::exp(-p.temporal_delta * age[t] * stab[g]);
        rf[r * c.P + t] = std::pow(std::max(x, 0.0), 1.0 / 1.1);
      }
    CheckErr("cpu", "elementwise_fuse rows=3" + sh, NormErr(fused, rf), 2e-6);
#ifdef STARKV_HAVE_CUDA
    OnGpu("temporal/fuse" + sh, [&] {
      Dev<float> dS1(S1), dS2(S2), dema(static_cast<size_t>(c.Hkv) * n), dstab(static_cast<size_t>(c.Hkv));
      if (c.frames >= 2) {
        cu::TemporalEma(dS1.p, c.P, c.Hkv, cur.start, n, dema.p, false, float(p.temporal_rho), dstab.p, nullptr);
        CheckErr("cuda", "temporal_ema first call" + sh, NormErr(dstab.Get(), stab1), 1e-6);
        cu::TemporalEma(dS2.p, c.P, c.Hkv, cur.start, n, dema.p, true, float(p.temporal_rho), dstab.p, nullptr);
        CheckErr("cuda", "temporal_ema pattern" + sh, NormErr(dema.Get(), ema2), 1e-6);
        CheckErr("cuda", "temporal_ema stability" + sh, NormErr(dstab.Get(), stab2), 1e-6);
      }
      Vi st0, en0;
      for (const Span& s : spans) st0.push_back(s.start), en0.push_back(s.end);
      Dev<int64_t> dst(st0), den(en0);
      Dev<float> dage(static_cast<size_t>(c.P));
      cu::FrameAges(dst.p, den.p, static_cast<int>(spans.size()), c.P, dage.p, nullptr);
      CheckSame("cuda", "frame_ages" + sh, dage.Get(), age);
      Dev<float> dbase(base), dw(w), dst2(stab), dout(base.size());
      Dev<int> dg(gstar);
      cu::FuseArgs a;
      a.base = dbase.p;
      a.rows = rows;
      a.P = c.P;
      a.gstar = dg.p;
      a.w_g = dw.p;
      a.num_kv_heads = c.Hkv;
      a.lambda = lambda;
      a.apply_discount = apply;
      a.age = dage.p;
      a.stab = dst2.p;
      a.delta = float(p.temporal_delta);
      a.sharpen = true;
      a.inv_t = inv_t;
      cu::ElementwiseFuse(a, dout.p, nullptr);
      CheckErr("cuda", "elementwise_fuse rows=3" + sh, NormErr(dout.Get(), fused), 1e-6);
    });
#endif
  }
}

// ================================================================ 6. top-k
void TestTopK() {
  // RankKey orders exactly as Better, special values included
  {
    const float sp[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(),
                        1e-40f, -1e-40f, 3.5f, 3.5f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()};
    const int ns = sizeof(sp) / sizeof(sp[0]);
    int bad = 0, pairs = 0;
    for (bool neg : {false, true})
      for (int a = 0; a < ns; ++a)
        for (int b = 0; b < ns; ++b)
          for (int64_t ia : {0, 5})
            for (int64_t ib : {1, 7}) {
              const float x = neg ? -sp[a] : sp[a], y = neg ? -sp[b] : sp[b];
              ++pairs;
              bad += (k::RankKey(sp[a], ia, neg) > k::RankKey(sp[b], ib, neg)) != k::Better(x, ia, y, ib);
            }
    R.Line("cpu", "rank_key order == Better (NaN, +-0, +-inf, denormals)", bad == 0,
           Str(pairs) + " pairs, " + Str(bad) + " disagree");
  }
  struct C { int rows; int64_t n; bool ties; };
  for (const C& c : {C{1, 1, false}, C{1, 7, false}, C{4, 37, false}, C{28, 1000, false}, C{1, 13500, false},
                     C{3, 301, true}}) {
    Vf x = Randn(static_cast<size_t>(c.rows) * c.n);
    if (c.ties) {
      for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(static_cast<int>(x[i] * 2.0f)) * 0.5f;
      x[0] = std::numeric_limits<float>::quiet_NaN();
      if (x.size() > 2) x[1] = -0.0f, x[2] = 0.0f;
    }
    const int64_t ks[] = {0, 1, c.n / 3, c.n - 1, c.n, c.n + 5};
    for (int64_t kk : ks)
      for (bool bottom : {false, true}) {
        std::vector<Vi> cpu(c.rows), ref(c.rows);
        for (int r = 0; r < c.rows; ++r) {
          const float* xr = x.data() + r * c.n;
          if (bottom) {
            Vf neg(xr, xr + c.n);
            for (float& v : neg) v = -v;
            cpu[r] = Sorted(TopK(neg.data(), c.n, kk));
          } else {
            cpu[r] = Sorted(TopK(xr, c.n, kk));
          }
          // reference: full sort of (value, index) pairs (NaN last, ties by lower index)
          Vi idx(c.n);
          std::iota(idx.begin(), idx.end(), 0);
          std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
            double va = xr[a], vb = xr[b];
            if (std::isnan(va) || std::isnan(vb)) return !std::isnan(va) && std::isnan(vb);
            return bottom ? va < vb : va > vb;
          });
          idx.resize(std::max<int64_t>(0, std::min(kk, c.n)));
          std::sort(idx.begin(), idx.end());
          ref[r] = idx;
        }
        const std::string tag = std::string(bottom ? "bottomk" : "topk") + " rows=" + Str(c.rows) + " n=" + Str(c.n) +
                                " k=" + Str(kk) + (c.ties ? " ties/NaN/-0" : "");
        R.Line("cpu", tag, cpu == ref, cpu == ref ? "same sets" : "sets differ");
#ifdef STARKV_HAVE_CUDA
        OnGpu(tag, [&] {
          const int64_t kmax = std::max<int64_t>(1, std::min(kk, c.n));
          Dev<float> dx(x);
          Dev<int64_t> dout(static_cast<size_t>(c.rows) * kmax);
          cu::TopKRows(dx.p, c.rows, c.n, c.n, nullptr, kk, bottom, dout.p, kmax, nullptr);
          const Vi o = dout.Get();
          bool same = true;
          for (int r = 0; r < c.rows; ++r)
            same = same && Vi(o.begin() + r * kmax, o.begin() + r * kmax + cpu[r].size()) == cpu[r];
          R.Line("cuda", tag, same, same ? "same sets (ascending)" : "sets differ");
        });
#endif
      }
    // variable k per row (AdaKV / VL-Cache)
    if (c.rows > 1) {
      Vi kr(c.rows);
      for (int r = 0; r < c.rows; ++r) kr[r] = (r * 7919) % (c.n + 1);
      std::vector<Vi> cpu(c.rows);
      for (int r = 0; r < c.rows; ++r) cpu[r] = Sorted(TopK(x.data() + r * c.n, c.n, kr[r]));
      const std::string tag = "topk per-row k rows=" + Str(c.rows) + " n=" + Str(c.n);
      R.Line("cpu", tag, true, "CPU TopK per row (reference for the kernel)");
#ifdef STARKV_HAVE_CUDA
      OnGpu(tag, [&] {
        Dev<float> dx(x);
        Dev<int64_t> dk(kr), dout(static_cast<size_t>(c.rows) * c.n);
        cu::TopKRows(dx.p, c.rows, c.n, c.n, dk.p, 0, false, dout.p, c.n, nullptr);
        const Vi o = dout.Get();
        bool same = true;
        for (int r = 0; r < c.rows; ++r) same = same && Vi(o.begin() + r * c.n, o.begin() + r * c.n + kr[r]) == cpu[r];
        R.Line("cuda", tag, same, same ? "same sets" : "sets differ");
      });
#endif
    }
  }
  // AdaKV head budgets from a global top over (row, slot)
  for (double alpha : {0.0, 0.2, 0.5, 1.0}) {
    const int rows = 4;
    const int64_t P = 101, B = 17;
    const Vf x = Randn(static_cast<size_t>(rows) * P);
    const Vi top = TopK(x.data(), rows * P, rows * B);
    const int64_t floor_cap = static_cast<int64_t>(static_cast<double>(B) * alpha);
    Vi cpu(rows), cnt(rows, 0), ref(rows);
    for (int64_t f : top) cnt[f / P]++;
    for (int r = 0; r < rows; ++r) {
      cpu[r] = k::AdaKvHeadBudget(cnt[r], alpha, floor_cap, P);
      const double v = cnt[r] * (1.0 - alpha) + floor_cap, fl = std::floor(v);
      int64_t rr = static_cast<int64_t>(v - fl > 0.5 ? fl + 1 : (v - fl < 0.5 ? fl : (std::fmod(fl, 2.0) == 0 ? fl : fl + 1)));
      ref[r] = std::max<int64_t>(0, std::min(rr, P));
    }
    const std::string tag = "adakv_head_budgets alpha=" + Fmt("%.1f", alpha);
    CheckSame("cpu", tag, cpu, ref);
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      Dev<int64_t> dtop(top), dk(static_cast<size_t>(rows));
      cu::AdaKvHeadBudgets(dtop.p, static_cast<int64_t>(top.size()), P, rows, alpha, floor_cap, dk.p, nullptr);
      CheckSame("cuda", tag, dk.Get(), cpu);
    });
#endif
  }
}

// ================================================================ 7. compaction
void TestCompact() {
  struct C { int Hkv, d; int64_t cap, L, W, keep; bool per_head; bool tokens; };
  for (const C& c : {C{1, 64, 40, 37, 1, 11, false, true}, C{2, 80, 300, 299, 8, 100, true, false},
                     C{4, 128, 1100, 1000, 32, 201, false, true}, C{2, 64, 20, 20, 5, 0, false, true},
                     C{4, 128, 700, 650, 8, 642, true, false}}) {
    const int64_t P = c.L - c.W;
    Vf keys = Randn(static_cast<size_t>(c.Hkv) * c.cap * c.d), vals = Randn(keys.size());
    Vi toks(c.cap);
    std::iota(toks.begin(), toks.end(), 1000);
    Selection sel = Compressed(c.per_head ? Granularity::KvHead : Granularity::Shared, c.keep + c.W, c.W, P);
    for (int g = 0; g < (c.per_head ? c.Hkv : 1); ++g) {
      Vi all(P);
      std::iota(all.begin(), all.end(), 0);
      std::shuffle(all.begin(), all.end(), rng);
      all.resize(c.keep);
      sel.kept.push_back(Sorted(all));
    }
    Vf ck = keys, cv = vals;
    Vi ct = toks;
    const int64_t nl = CompactLayer(ck.data(), cv.data(), c.Hkv, c.cap, c.d, c.L, sel, c.tokens ? ct.data() : nullptr);
    // reference: plain gather into fresh arrays
    bool ok = nl == c.keep + c.W;
    for (int g = 0; g < c.Hkv && ok; ++g) {
      const Vi& l = sel.kept[c.per_head ? g : 0];
      for (int64_t dst = 0; dst < nl; ++dst) {
        const int64_t src = dst < c.keep ? l[dst] : P + (dst - c.keep);
        ok = ok && std::memcmp(&ck[(g * c.cap + dst) * c.d], &keys[(g * c.cap + src) * c.d], sizeof(float) * c.d) == 0 &&
             std::memcmp(&cv[(g * c.cap + dst) * c.d], &vals[(g * c.cap + src) * c.d], sizeof(float) * c.d) == 0;
        if (c.tokens && g == 0) ok = ok && ct[dst] == toks[src];
      }
    }
    const std::string tag = "compact_kv Hkv=" + Str(c.Hkv) + " d=" + Str(c.d) + " L=" + Str(c.L) + " keep=" +
                            Str(c.keep) + "+" + Str(c.W) + (c.per_head ? " per-head" : " shared") +
                            (c.tokens ? " +tokens" : "");
    R.Line("cpu", tag, ok, ok ? "rows moved exactly" : "rows differ");
#ifdef STARKV_HAVE_CUDA
    for (bool use_scratch : {false, true})
      OnGpu(tag + (use_scratch ? " scratch" : " in-place"), [&] {
        Vi flat;
        for (const Vi& l : sel.kept) flat.insert(flat.end(), l.begin(), l.end());
        Dev<float> dk(keys), dv(vals);
        Dev<int64_t> dt(toks), dl(flat);
        Dev<char> scratch(use_scratch ? cu::CompactScratchBytes(c.Hkv, nl, c.d) : 1);
        const int64_t n2 = cu::CompactKv(dk.p, dv.p, c.Hkv, c.cap, c.d, dl.p, static_cast<int>(sel.kept.size()), c.keep,
                                         P, c.W, c.tokens ? dt.p : nullptr, use_scratch ? scratch.p : nullptr, nullptr);
        Vf gk = dk.Get(), gv = dv.Get();
        Vi gt = dt.Get();
        bool same = n2 == nl;
        for (int g = 0; g < c.Hkv && same; ++g)
          same = std::memcmp(&gk[g * c.cap * c.d], &ck[g * c.cap * c.d], sizeof(float) * nl * c.d) == 0 &&
                 std::memcmp(&gv[g * c.cap * c.d], &cv[g * c.cap * c.d], sizeof(float) * nl * c.d) == 0;
        if (c.tokens) same = same && std::equal(gt.begin(), gt.begin() + nl, ct.begin());
        R.Line("cuda", tag + (use_scratch ? " scratch" : " in-place"), same, same ? "identical to the CPU" : "differs");
      });
#endif
  }
}

// ================================================================ pipeline: SnapKV on the kernels
// window colsum -> pool -> (group mean) -> top-k per row, against SnapKvMethod's kept sets. Scores
// differ from the CPU by rounding only, so a differing index must be a near-tie at the cut.
void TestSnapKvPipeline() {
  struct C { int H, Hkv, d; int64_t L; Granularity g; };
  for (const C& c : {C{4, 2, 64, 301, Granularity::QueryHead}, C{14, 2, 128, 777, Granularity::KvHead},
                     C{7, 7, 80, 129, Granularity::QueryHead}}) {
    Layer l(c.H, c.Hkv, c.d, c.L, 8);
    MethodParams p = SnapKvMethod().Defaults();
    p.granularity = c.g;
    LayerState st;
    Selection sel;
    Telemetry tel;
    SnapKvMethod().Compress(l.in, Budget{20.0}, p, st, sel, tel);
    const std::string tag = std::string("pipeline snapkv ") + (c.g == Granularity::KvHead ? "kv_head" : "query_head") +
                            " H=" + Str(c.H) + "/" + Str(c.Hkv) + " d=" + Str(c.d) + " L=" + Str(c.L);
    {  // double reference pipeline: colsum, avg pool (zero pad, /k), group mean, top-k (near-ties excused)
      const int64_t W = sel.window, P = sel.past_len, kk = sel.k_keep, half = p.kernel / 2;
      const int G = c.H / c.Hkv, rows = static_cast<int>(sel.kept.size());
      Vd sums(static_cast<size_t>(c.H) * P, 0.0), pooled(sums.size()), sc(static_cast<size_t>(rows) * P, 0.0);
      for (int h = 0; h < c.H; ++h)
        for (int64_t i = 0; i < W; ++i) {
          const Vd pr = RefRow(l, h, c.L - W + i);
          for (int64_t t = 0; t < P; ++t) sums[h * P + t] += pr[t];
        }
      for (int h = 0; h < c.H; ++h)
        for (int64_t t = 0; t < P; ++t) {
          double a = 0.0;
          for (int64_t j = t - half; j < t - half + p.kernel; ++j) a += (j >= 0 && j < P) ? sums[h * P + j] : 0.0;
          pooled[h * P + t] = a / p.kernel;
        }
      for (int r = 0; r < rows; ++r)
        for (int64_t t = 0; t < P; ++t)
          if (c.g == Granularity::KvHead) {
            for (int j = 0; j < G; ++j) sc[r * P + t] += pooled[(r * G + j) * P + t] / G;
          } else {
            sc[r * P + t] = pooled[r * P + t];
          }
      int64_t differ = 0, far = 0;
      for (int r = 0; r < rows; ++r) {
        Vi idx(P);
        std::iota(idx.begin(), idx.end(), 0);
        std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return sc[r * P + a] > sc[r * P + b]; });
        const double kth = sc[r * P + idx[kk - 1]];
        idx.resize(kk);
        std::sort(idx.begin(), idx.end());
        Vi diff;
        std::set_symmetric_difference(idx.begin(), idx.end(), sel.kept[r].begin(), sel.kept[r].end(),
                                      std::back_inserter(diff));
        differ += static_cast<int64_t>(diff.size());
        for (int64_t t : diff) far += std::fabs(sc[r * P + t] - kth) > 1e-5 * std::fabs(kth);
      }
      R.Line("cpu", tag, sel.compressed && far == 0,
             Str(rows) + " lists of " + Str(kk) + ": " +
                 (differ == 0 ? "same kept sets as the double reference" : Str(differ) + " differ (" + Str(far) + " not near-ties)"));
    }
#ifdef STARKV_HAVE_CUDA
    OnGpu(tag, [&] {
      const int64_t W = sel.window, P = sel.past_len, kk = sel.k_keep;
      const int rows = static_cast<int>(sel.kept.size());
      Dev<float> dq(l.queries), dk(l.keys), sums(static_cast<size_t>(c.H) * P), pooled(static_cast<size_t>(c.H) * P),
          red(static_cast<size_t>(c.Hkv) * P);
      const cu::WindowArgs a = DeviceWindow(l, W, dq, dk);
      Dev<char> scratch(cu::WindowScratchBytes(a));
      cu::WindowColsum(a, sums.p, scratch.p, nullptr);
      cu::Pool1d(sums.p, c.H, P, p.kernel, p.pooling == Pooling::Max, pooled.p, nullptr);
      const float* scores = pooled.p;
      if (c.g == Granularity::KvHead) {
        cu::GroupReduce(pooled.p, c.H, c.Hkv, P, false, red.p, nullptr);
        scores = red.p;
      }
      Dev<int64_t> out(static_cast<size_t>(rows) * std::max<int64_t>(kk, 1));
      cu::TopKRows(scores, rows, P, P, nullptr, kk, false, out.p, std::max<int64_t>(kk, 1), nullptr);
      const Vi o = out.Get();
      Vf sc(static_cast<size_t>(rows) * P);
      cu::CopyToHost(sc.data(), scores, sizeof(float) * sc.size());
      int64_t differ = 0, far = 0;
      for (int r = 0; r < rows; ++r) {
        Vi gk(o.begin() + r * std::max<int64_t>(kk, 1), o.begin() + r * std::max<int64_t>(kk, 1) + kk), diff;
        std::set_symmetric_difference(gk.begin(), gk.end(), sel.kept[r].begin(), sel.kept[r].end(), std::back_inserter(diff));
        differ += static_cast<int64_t>(diff.size());
        if (!diff.empty()) {  // near-tie: every differing slot's score is within 1e-5 of the k-th score
          Vf row(sc.begin() + r * P, sc.begin() + (r + 1) * P);
          Vf srt(row);
          std::nth_element(srt.begin(), srt.begin() + (kk - 1), srt.end(), std::greater<float>());
          const float kth = srt[kk - 1];
          for (int64_t t : diff) far += std::fabs(row[t] - kth) > 1e-5f * std::max(std::fabs(kth), 1e-30f);
        }
      }
      R.Line("cuda", tag, far == 0,
             differ == 0 ? "same kept sets as the CPU" : Str(differ) + " indices differ (" + Str(far) + " not near-ties)");
    });
#endif
  }
}

}  // namespace

int main() {
#ifdef STARKV_HAVE_CUDA
  {
    std::string why;
    int n = 0;
    try {
      n = cu::DeviceCount(&why);
    } catch (const std::exception& e) {
      why = e.what();
    }
    gpu.ok = n > 0;
    if (gpu.ok) {
      try {
        gpu.name = cu::DeviceName(0);
      } catch (const std::exception& e) {
        gpu.ok = false;
        why = e.what();
      }
    }
    gpu.reason = why;
    std::printf("kv_ops_test: CUDA kernels compiled in; %s\n",
                gpu.ok ? ("device 0: " + gpu.name).c_str() : why.c_str());  // why: "no CUDA device: ..."
  }
#else
  std::printf("kv_ops_test: CUDA kernels not compiled in (STARKV_HAVE_CUDA undefined); CPU cases only\n");
#endif
  const std::pair<const char*, void (*)()> groups[] = {
      {"window", TestWindow},   {"pool/group", TestPoolGroup}, {"saliency", TestSaliency},
      {"mi", TestMi},           {"lowrank", TestLowRank},      {"temporal/fuse", TestTemporalFuse},
      {"topk", TestTopK},       {"compact", TestCompact},      {"pipeline", TestSnapKvPipeline}};
#ifdef STARKV_HAVE_CUDA
  TestErrorText();
#endif
  for (const auto& [name, fn] : groups) {
    try {
      fn();
    } catch (const std::exception& e) {
      R.Line("cpu", std::string(name) + " group", false, std::string("threw: ") + e.what());
    }
  }
  std::printf("kv_ops_test: %d CPU cases, %d CUDA cases, %d failures\n", R.cpu_cases, R.gpu_cases, R.failures);
#ifdef STARKV_HAVE_CUDA
  if (gpu.ok)
    std::printf("CUDA: %d cases run on %s\n", R.gpu_cases, gpu.name.c_str());
  else
    std::printf("CUDA: compiled, not run (%s)\n", gpu.reason.c_str());
#else
  std::printf("CUDA: not compiled in (this build has no nvcc / STARKV_HAVE_CUDA); the kernels were not built or run\n");
#endif
  return R.failures == 0 ? 0 : 1;
}
