// JS <-> native for KV compression in generation and episodes: the request's `kv` policy and the
// per-layer reports of a turn.
#pragma once

#include <napi.h>

#include <vector>

#include "models/episode.h"

namespace starkv::binding {

// kv = { method: string, params?: {name: number|boolean|string}, percent?: number, refLen?: number,
//        capTokens?: number }; absent/undefined -> no compression.
qwen2vl::KvPolicy ParseKvPolicy(Napi::Env env, const Napi::Value& v);

Napi::Array LayerReportsToJs(Napi::Env env, const std::vector<qwen2vl::LayerReport>& layers);

}  // namespace starkv::binding
