// KV store growth and appends.
#include "core/kv_store.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace starkv {

KvStore::KvStore(Backend* backend, int layers, int kv_heads, int head_dim)
    : backend_(backend), kv_heads_(kv_heads), head_dim_(head_dim), layers_(static_cast<size_t>(layers)) {}

void KvStore::Reserve(int64_t capacity) {
  if (capacity <= capacity_) return;
  const int64_t hd = head_dim_;
  for (auto& L : layers_) {
    Buffer k = backend_->Alloc(MemCategory::Kv, kv_heads_ * capacity * hd);
    Buffer v = backend_->Alloc(MemCategory::Kv, kv_heads_ * capacity * hd);
    Buffer t = backend_->AllocHost(MemCategory::Kv, sizeof(int64_t) * static_cast<size_t>(capacity));
    for (int g = 0; g < kv_heads_ && L.length > 0; ++g) {
      backend_->CopyRows(L.k.f() + g * capacity_ * hd, hd, nullptr, k.f() + g * capacity * hd, hd, nullptr, L.length, hd);
      backend_->CopyRows(L.v.f() + g * capacity_ * hd, hd, nullptr, v.f() + g * capacity * hd, hd, nullptr, L.length, hd);
    }
    if (L.length > 0) std::memcpy(t.data(), L.tokens.data(), sizeof(int64_t) * L.length);  // host metadata
    L.k = std::move(k);
    L.v = std::move(v);
    L.tokens = std::move(t);
  }
  capacity_ = capacity;
}

void KvStore::Append(int layer, const float* k, const float* v, int64_t row, int64_t n, int64_t first_token) {
  if (layer < 0 || layer >= layers()) throw Error("kv store: layer " + std::to_string(layer) + " out of range");
  Layer& L = layers_[layer];
  if (L.length + n > capacity_) Reserve(std::max(L.length + n, capacity_ * 2));
  const int64_t hd = head_dim_;
  for (int g = 0; g < kv_heads_; ++g) {
    backend_->CopyRows(k + g * hd, row, nullptr, L.k.f() + g * capacity_ * hd + L.length * hd, hd, nullptr, n, hd);
    backend_->CopyRows(v + g * hd, row, nullptr, L.v.f() + g * capacity_ * hd + L.length * hd, hd, nullptr, n, hd);
  }
  int64_t* t = L.tokens.as<int64_t>() + L.length;
  for (int64_t i = 0; i < n; ++i) t[i] = first_token + i;
  L.length += n;
}

void KvStore::SetLength(int layer, int64_t length) {
  if (layer < 0 || layer >= layers() || length < 0 || length > capacity_)
    throw Error("kv store: bad length " + std::to_string(length) + " for layer " + std::to_string(layer));
  layers_[layer].length = length;
}

void KvStore::Clear() {
  for (auto& L : layers_) L.length = 0;
  tokens = 0;
  next_position = 0;
}

}  // namespace starkv
