// loadModel's spec object -> qwen2vl::LoadSpec (config struct, weight files, tensor table), checked field by field.
#pragma once

#include <napi.h>

#include "models/qwen2vl_model.h"

namespace starkv::binding {

qwen2vl::LoadSpec ParseSpec(const Napi::Object& spec);

}  // namespace starkv::binding
