// Op-level checks of the CPU backend against plain double-precision references: matmul over every
// weight dtype, M (decode tiles, prefill widening, oneDNN and built-in paths), K tails and thread
// counts; attention (causal over a stored prefix, segments, GQA); rotary; norms; sampling; dtypes;
// KV store growth.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/kv_store.h"
#include "core/weight_store.h"
#include "cpu/cpu_backend.h"
#include "cpu/sample.h"
#include "cpu/simd.h"
#include "golden_util.h"

using namespace starkv;

namespace {

struct WeightBuf {
  std::vector<uint16_t> h;
  std::vector<float> f;  // exact fp32 value of each element
  Tensor t;
};

WeightBuf MakeWeight(DType dt, int64_t N, int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  WeightBuf w;
  w.f.resize(N * K);
  if (dt != DType::F32) w.h.resize(N * K);
  for (int64_t i = 0; i < N * K; ++i) {
    float v = nd(rng);
    if (dt == DType::BF16) {
      w.h[i] = F32ToBf16(v);
      v = Bf16ToF32(w.h[i]);
    } else if (dt == DType::F16) {
      // round through float -> half by truncation of a representable value: use a coarse grid
      v = std::round(v * 256.0f) / 256.0f;
      uint16_t sign = v < 0 ? 0x8000 : 0;
      float a = std::fabs(v);
      int e;
      float m = std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
      uint16_t bits = 0;
      if (a != 0.0f) {
        const int ee = e - 1 + 15;
        const uint16_t man = static_cast<uint16_t>(std::lround((m * 2.0f - 1.0f) * 1024.0f)) & 0x3ff;
        bits = static_cast<uint16_t>((ee << 10) | man);
      }
      w.h[i] = sign | bits;
      v = F16ToF32(w.h[i]);
    }
    w.f[i] = v;
  }
  w.t.dtype = dt;
  w.t.ndim = 2;
  w.t.shape[0] = N;
  w.t.shape[1] = K;
  w.t.data = dt == DType::F32 ? static_cast<const void*>(w.f.data()) : static_cast<const void*>(w.h.data());
  return w;
}

void TestMatmul(gt::Checker& ck) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    // K = 4097 and 4171: the decode path's four-row kernel (K > 4096) with 16-wide and masked tails.
    for (int64_t K : {1, 15, 16, 33, 200, 4097, 4171}) {
      for (int64_t M : {1, 3, 4, 5, 17, 40}) {
        if (K > 4096 && M > 3) continue;
        const int64_t N = 37;
        WeightBuf w = MakeWeight(dt, N, K, rng);
        std::vector<float> x(M * K), bias(N), ref(M * N);
        for (auto& v : x) v = nd(rng);
        for (auto& v : bias) v = nd(rng);
        Tensor bt;
        bt.ndim = 1;
        bt.shape[0] = N;
        bt.data = bias.data();
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < N; ++n) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k) s += static_cast<double>(x[m * K + k]) * w.f[n * K + k];
            ref[m * N + n] = static_cast<float>(s + bias[n]);
          }
        for (bool dnnl : {true, false}) {
          std::vector<float> first;
          for (int threads : {1, 2, 3}) {
            MemoryAccount acc;
            cpu::CpuOptions o;
            o.threads = threads;
            o.use_dnnl = dnnl;
            cpu::CpuBackend be(&acc, o);
            std::vector<float> y(M * N);
            be.MatMul(x.data(), M, w.t, &bt, y.data());
            const double e = gt::RelErr(y.data(), ref.data(), M * N);
            char what[128];
            std::snprintf(what, sizeof what, "matmul %s M=%lld K=%lld threads=%d %s: err %.1e", DTypeName(dt),
                          static_cast<long long>(M), static_cast<long long>(K), threads, dnnl ? "dnnl" : "builtin", e);
            ck.Expect(e < 1e-5, what);
            // Identical bits for any thread count (fixed blocks, one thread per output).
            if (first.empty()) first = y;
            else ck.Expect(first == y, std::string(what) + " (bits differ across threads)");
          }
        }
      }
    }
  }
}

// Naive attention: query i (head h) sees slots [lo(i), hi(i)).
void TestAttention(gt::Checker& ck) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int H = 6, KV = 2, hd = 20;
  for (int threads : {1, 2}) {
    MemoryAccount acc;
    cpu::CpuOptions o;
    o.threads = threads;
    cpu::CpuBackend be(&acc, o);
    // Causal over a stored prefix: n_q = 19 new rows after 23 old slots, KV layout [KV][cap][hd].
    const int64_t nq = 19, nkv = 42, cap = 50;
    std::vector<float> q(nq * H * hd), k(KV * cap * hd), v(KV * cap * hd), out(nq * H * hd), ref(nq * H * hd);
    for (auto& z : q) z = nd(rng);
    for (auto& z : k) z = nd(rng);
    for (auto& z : v) z = nd(rng);
    const float scale = 0.3f;
    for (int64_t i = 0; i < nq; ++i)
      for (int h = 0; h < H; ++h) {
        const int g = h / (H / KV);
        const int64_t hi = nkv - nq + i + 1;
        std::vector<double> s(hi);
        double m = -1e300, sum = 0;
        for (int64_t j = 0; j < hi; ++j) {
          double d = 0;
          for (int c = 0; c < hd; ++c) d += static_cast<double>(q[(i * H + h) * hd + c]) * k[(g * cap + j) * hd + c];
          s[j] = d * scale;
          m = std::max(m, s[j]);
        }
        for (auto& z : s) sum += (z = std::exp(z - m));
        for (int c = 0; c < hd; ++c) {
          double acc2 = 0;
          for (int64_t j = 0; j < hi; ++j) acc2 += s[j] / sum * v[(g * cap + j) * hd + c];
          ref[(i * H + h) * hd + c] = static_cast<float>(acc2);
        }
      }
    AttnArgs a;
    a.q = q.data();
    a.q_row = H * hd;
    a.k = k.data();
    a.k_row = hd;
    a.k_head = cap * hd;
    a.v = v.data();
    a.v_row = hd;
    a.v_head = cap * hd;
    a.out = out.data();
    a.out_row = H * hd;
    a.n_q = nq;
    a.n_kv = nkv;
    a.heads = H;
    a.kv_heads = KV;
    a.hd = hd;
    a.scale = scale;
    be.Attention(a);
    ck.Expect(gt::RelErr(out.data(), ref.data(), nq * H * hd) < 1e-5, "causal attention over a stored prefix");
    // Segments (vision): rows [0,5) [5,5) [5,12) [12,19) attend within their segment only.
    const int64_t segs[] = {0, 5, 5, 12, 19};
    std::vector<float> qkv(nq * 3 * H * hd);
    for (auto& z : qkv) z = nd(rng);
    const int64_t row = 3 * H * hd;
    for (int s = 0; s < 4; ++s)
      for (int64_t i = segs[s]; i < segs[s + 1]; ++i)
        for (int h = 0; h < H; ++h) {
          std::vector<double> sc;
          double m = -1e300, sum = 0;
          for (int64_t j = segs[s]; j < segs[s + 1]; ++j) {
            double d = 0;
            for (int c = 0; c < hd; ++c) d += static_cast<double>(qkv[i * row + h * hd + c]) * qkv[j * row + H * hd + h * hd + c];
            sc.push_back(d * scale);
            m = std::max(m, sc.back());
          }
          for (auto& z : sc) sum += (z = std::exp(z - m));
          for (int c = 0; c < hd; ++c) {
            double acc2 = 0;
            for (int64_t j = segs[s]; j < segs[s + 1]; ++j)
              acc2 += sc[j - segs[s]] / sum * qkv[j * row + 2 * H * hd + h * hd + c];
            ref[(i * H + h) * hd + c] = static_cast<float>(acc2);
          }
        }
    AttnArgs b;
    b.q = qkv.data();
    b.q_row = row;
    b.k = qkv.data() + H * hd;
    b.k_row = row;
    b.k_head = hd;
    b.v = qkv.data() + 2 * H * hd;
    b.v_row = row;
    b.v_head = hd;
    b.out = out.data();
    b.out_row = H * hd;
    b.n_q = b.n_kv = nq;
    b.heads = b.kv_heads = H;
    b.hd = hd;
    b.scale = scale;
    b.segments = segs;
    b.n_segments = 4;
    be.Attention(b);
    ck.Expect(gt::RelErr(out.data(), ref.data(), nq * H * hd) < 1e-5, "segment attention");
  }
}

// The vectorised exp this CPU build uses (softmax, SiLU): AVX-512 Exp16 or AVX2 Exp8, against std::exp.
void TestVectorExp(gt::Checker& ck) {
  std::vector<float> xs;
  for (float x = -90.0f; x <= 90.0f; x += 0.0137f) xs.push_back(x);
  for (float x : {0.0f, -0.0f, -1e-30f, 1e-30f, -87.3f, cpu::cephes::kExpLo, -87.4f, 88.7f, cpu::cephes::kExpHi, 88.73f, -INFINITY, INFINITY})
    xs.push_back(x);
  while (xs.size() % 16) xs.push_back(0.0f);
  std::vector<float> y(xs.size());
  const char* path = "scalar";
#if defined(__AVX512F__)
  path = "Exp16 (AVX-512)";
  for (size_t i = 0; i < xs.size(); i += 16) _mm512_storeu_ps(y.data() + i, cpu::Exp16(_mm512_loadu_ps(xs.data() + i)));
#elif defined(STARKV_AVX2)
  path = "Exp8 (AVX2)";
  for (size_t i = 0; i < xs.size(); i += 8) _mm256_storeu_ps(y.data() + i, cpu::Exp8(_mm256_loadu_ps(xs.data() + i)));
#else
  for (size_t i = 0; i < xs.size(); ++i) y[i] = std::exp(xs[i]);
#endif
  double worst = 0.0;
  bool edges = true;
  const float top = y[std::find(xs.begin(), xs.end(), cpu::cephes::kExpHi) - xs.begin()];
  for (size_t i = 0; i < xs.size(); ++i) {
    const float x = xs[i];
    if (x < cpu::cephes::kExpLo) edges &= y[i] == 0.0f;  // flushed to exactly zero, -inf included
    else if (x > cpu::cephes::kExpHi) edges &= y[i] == top && top > 3.4e38f;  // saturated, both ISAs alike
    else {
      const double ref = std::exp(static_cast<double>(x));
      if (ref >= 1.2e-38 && ref <= 3.4e38) worst = std::max(worst, std::fabs(y[i] - ref) / ref);
    }
  }
  std::printf("  vector exp: %s, worst relative error %.2e over %zu points\n", path, worst, xs.size());
  ck.Expect(worst < 5e-7, std::string("vector exp within ~4 ulp of exp: ") + path);
  // The edges are the vector exps' own (a scalar build runs std::exp, with its denormals and +inf).
  if (std::string(path) != "scalar") ck.Expect(edges, std::string("vector exp: zero below -87.34 (and at -inf), saturated at e^88.72 above it: ") + path);
  else std::printf("  vector exp: none in this build (no AVX2 / AVX-512): the edge checks are for the vector paths\n");
}

// Bf16x16 (the bf16 attention's probabilities) is F32ToBf16 in lanes, bit for bit: ties, carries into
// the exponent, subnormals, infinities, NaNs, and a sweep of random bit patterns.
void TestBf16x16(gt::Checker& ck) {
#if defined(__AVX512F__)
  std::vector<uint32_t> bits = {0x00000000u, 0x80000000u, 0x3f808000u, 0x3f818000u, 0x3f80ffffu, 0x7f7fffffu,
                                0x00000001u, 0x00008000u, 0x00018000u, 0x807fffffu, 0x7f800000u, 0xff800000u,
                                0x7fc00000u, 0x7f800001u, 0xffbfffffu, 0x3f7fff80u};
  std::mt19937 rng(7);
  while (bits.size() < 16 * 4096) bits.push_back(rng());
  size_t bad = 0;
  for (size_t i = 0; i < bits.size(); i += 16) {
    alignas(64) float f[16];
    std::memcpy(f, bits.data() + i, sizeof f);
    alignas(32) uint16_t h[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(h), cpu::Bf16x16(_mm512_load_ps(f)));
    for (int l = 0; l < 16; ++l) bad += h[l] != F32ToBf16(f[l]);
  }
  ck.Expect(bad == 0, "Bf16x16 equals F32ToBf16 on " + std::to_string(bits.size()) + " bit patterns (" + std::to_string(bad) + " differ)");
#else
  std::printf("  Bf16x16: AVX-512 only, not in this build\n");
  (void)ck;
#endif
}

void TestMisc(gt::Checker& ck) {
  // dtypes
  ck.Expect(F16ToF32(0x3c00) == 1.0f && F16ToF32(0xc000) == -2.0f && F16ToF32(0x0001) == std::ldexp(1.0f, -24) &&
                std::isinf(F16ToF32(0x7c00)) && F16ToF32(0x7bff) == 65504.0f,
            "f16 -> f32 exact");
  ck.Expect(Bf16ToF32(F32ToBf16(1.5f)) == 1.5f && F32ToBf16(1.00390625f) == 0x3f80, "bf16 round trip / ties to even");
  // sampling
  std::vector<float> lg = {0.1f, 2.0f, 2.0f, -1.0f, 1.9f};
  ck.Expect(cpu::Argmax(lg.data(), 5) == 1, "argmax: lowest index on ties");
  std::mt19937_64 r1(5), r2(5);
  SampleParams p;
  p.temperature = 1.0f;
  p.top_k = 1;
  auto l2 = lg;
  ck.Expect(cpu::Sample(l2.data(), 5, p, r1) == 1, "top-k 1 = greedy");
  p.top_k = 0;
  p.top_p = 0.9f;
  std::vector<int> a, b;
  for (int i = 0; i < 50; ++i) {
    auto x = lg, y = lg;
    a.push_back(cpu::Sample(x.data(), 5, p, r1));
    b.push_back(cpu::Sample(y.data(), 5, p, r2));
  }
  r2.seed(5);
  ck.Expect(a != std::vector<int>(50, a[0]), "sampling varies");
  bool never_low = true;
  for (int t : a) never_low = never_low && t != 3;
  ck.Expect(never_low, "top-p excludes the tail");
  // KV store growth keeps slots
  MemoryAccount acc;
  cpu::CpuBackend be(&acc, cpu::CpuOptions{});
  KvStore kv(&be, 2, 2, 4);
  kv.Reserve(2);
  std::vector<float> k(3 * 8), v(3 * 8);
  for (int i = 0; i < 24; ++i) k[i] = static_cast<float>(i), v[i] = -static_cast<float>(i);
  kv.Append(0, k.data(), v.data(), 8, 3, 10);
  kv.Append(0, k.data(), v.data(), 8, 3, 13);
  ck.Expect(kv.capacity() >= 6 && kv.Length(0) == 6 && kv.Length(1) == 0, "kv store grows");
  ck.Expect(kv.Keys(0)[kv.KHeadStride() + 4 * 4] == 12.0f && kv.SlotTokens(0)[5] == 15 && kv.Values(0)[3 * 4] == -0.0f,
            "kv store layout [kv_heads][capacity][head_dim]");
  ck.Expect(acc.Get(MemCategory::Kv).current > 0, "kv bytes accounted");
  {  // CopyRows: gather then scatter back
    std::vector<float> src(5 * 3), mid(5 * 3), back(5 * 3, -1.0f);
    for (int i = 0; i < 15; ++i) src[i] = static_cast<float>(i);
    const int64_t idx[] = {4, 0, 3, 1, 2};
    be.CopyRows(src.data(), 3, idx, mid.data(), 3, nullptr, 5, 3);
    be.CopyRows(mid.data(), 3, nullptr, back.data(), 3, idx, 5, 3);
    ck.Expect(mid[0] == 12.0f && mid[5] == 2.0f && back == src, "CopyRows gather/scatter");
  }
  bool threw = false;
  try {
    Buffer huge(&acc, MemCategory::Activations, size_t(1) << 44);
  } catch (const Error& e) {
    threw = std::string(e.what()).find("out of memory") != std::string::npos;
  }
  ck.Expect(threw, "a huge allocation is an 'out of memory' error");
  {  // Buffers small (malloc + memset) and large (anonymous mapping): zero, writable, counted, moved, freed.
    MemoryAccount a2;
    const size_t sizes[] = {1000, kMappedBytes - 64, kMappedBytes, kMappedBytes + 4099, size_t(48) << 20};
    bool zero = true, counted = true;
    for (int round = 0; round < 2; ++round)  // twice: reused or fresh memory must be zero again
      for (size_t n : sizes) {
        Buffer b(&a2, MemCategory::Workspace, n);
        const unsigned char* p = static_cast<const unsigned char*>(b.data());
        for (size_t i = 0; i < n; i += 4093) zero = zero && p[i] == 0;
        zero = zero && p[n - 1] == 0;
        std::memset(b.data(), 0xab, n);
        counted = counted && a2.Get(MemCategory::Workspace).current == static_cast<int64_t>(n);
        Buffer moved = std::move(b);
        counted = counted && b.data() == nullptr && moved.bytes() == n &&
                  static_cast<unsigned char*>(moved.data())[n - 1] == 0xab &&
                  a2.Get(MemCategory::Workspace).current == static_cast<int64_t>(n);
      }
    ck.Expect(zero, "every buffer starts zeroed (malloc'd and mapped)");
    ck.Expect(counted && a2.Get(MemCategory::Workspace).current == 0 &&
                  a2.Get(MemCategory::Workspace).peak == static_cast<int64_t>(size_t(48) << 20),
              "buffers are counted while they live, across a move, and not after");
  }
  {  // Checkpoint files mapped or resident (read into anonymous huge pages): the same tensors, byte for byte.
    char path[] = "/tmp/starkv-ops-weights-XXXXXX";
    const int fd = mkstemp(path);
    std::vector<unsigned char> bytes((size_t(5) << 20) + 12345);
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>((i * 2654435761u) >> 13);
    const bool wrote = fd >= 0 && write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
    if (fd >= 0) close(fd);
    ck.Expect(wrote, "temp checkpoint file written");
    const std::vector<TensorEntry> entries = {{"a", 0, DType::BF16, {1024, 512}, 64, 1024 * 512 * 2},
                                              {"b", 0, DType::F32, {3, 1000}, (size_t(5) << 20) - 4000, 12000}};
    MemoryAccount am, ar;
    WeightStore mapped({path}, entries, &am, false), resident({path}, entries, &ar, true);
    bool same = true;
    for (const auto& e : entries) {
      const Tensor tm = mapped.Get(e.name, e.shape), tr = resident.Get(e.name, e.shape);
      same = same && tm.data != tr.data && std::memcmp(tm.data, tr.data, e.nbytes) == 0 &&
             std::memcmp(tr.data, bytes.data() + e.offset, e.nbytes) == 0;
    }
    ck.Expect(same, "resident weights hold the file's bytes at every tensor");
    ck.Expect(!mapped.Resident() && resident.Resident(), "the store says how it holds the files");
    ck.Expect(am.Get(MemCategory::Weights).current == static_cast<int64_t>(bytes.size()) &&
                  ar.Get(MemCategory::Weights).current == static_cast<int64_t>(bytes.size()),
              "both count the files' bytes as weights");
    unlink(path);
    bool named = false;
    try {
      WeightStore gone({path}, entries, &ar, true);
    } catch (const Error& e) {
      named = std::string(e.what()).find(path) != std::string::npos;
    }
    ck.Expect(named, "a missing file is an error naming it (resident too)");
  }
}

}  // namespace

int main() {
  gt::Checker ck;
  TestMatmul(ck);
  TestAttention(ck);
  TestVectorExp(ck);
  TestBf16x16(ck);
  TestMisc(ck);
  return ck.Finish("ops_test");
}
