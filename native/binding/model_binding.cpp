// N-API surface of the model engine: loadModel -> NativeModel (encodeImages, ropeIndex, generate,
// memory, info, dispose) and benchLimits. Every heavy call runs on the model's own engine thread,
// queued in order; results and streamed tokens come back through one thread-safe function per call
// (so tokens always arrive before the promise settles). C++ exceptions become JS errors here.
#include <napi.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/serial_worker.h"
#include "cpu/bench.h"
#include "cpu/cpu_backend.h"
#include "cpu/gemm.h"
#include "binding/js_args.h"
#include "binding/kv_turn_js.h"
#include "binding/model_spec_js.h"
#include "models/qwen2vl_model.h"
#ifdef STARKV_HAVE_CUDA
#include "cuda_backend.h"  // kernels/
#endif

namespace starkv::binding {
namespace {

using qwen2vl::Model;

// ---- worker -> JS thread ----
using JsTask = std::function<void(Napi::Env)>;  // env is null while the environment is torn down
void CallJsTask(Napi::Env env, Napi::Function, void*, JsTask* t) {
  if (t) {
    try {
      (*t)(env);
    } catch (...) {
    }
    delete t;
  }
}
using Tsfn = Napi::TypedThreadSafeFunction<void, JsTask, CallJsTask>;

struct Channel {
  Tsfn tsfn;
  explicit Channel(Napi::Env env) : tsfn(Tsfn::New(env, "starkv-engine", 0, 1)) {}
  void Send(JsTask t) {
    auto* p = new JsTask(std::move(t));
    if (tsfn.NonBlockingCall(p) != napi_ok) delete p;
  }
  void Close() { tsfn.Release(); }  // after the last Send
};

// ---- the engine of one model ----
struct CancelSet {  // cancel flags of running/queued calls; shared with their completions
  std::mutex mu;
  std::set<std::shared_ptr<std::atomic<bool>>> flags;
  void Add(const std::shared_ptr<std::atomic<bool>>& f) {
    std::lock_guard<std::mutex> lk(mu);
    flags.insert(f);
  }
  void Remove(const std::shared_ptr<std::atomic<bool>>& f) {
    std::lock_guard<std::mutex> lk(mu);
    flags.erase(f);
  }
  void CancelAll() {
    std::lock_guard<std::mutex> lk(mu);
    for (auto& f : flags) f->store(true);
  }
};

struct EngineState {
  std::unique_ptr<Model> model;  // built and used on the worker thread; freed after it stops
  // Persistent episodes by id; touched on the worker thread only (declared after `model`: freed first).
  std::map<int64_t, std::unique_ptr<qwen2vl::Episode>> episodes;
  int64_t next_episode = 1;  // JS thread
  std::string gemm, weights, simd, device, device_note;
  int threads = 0;
  std::shared_ptr<CancelSet> cancels = std::make_shared<CancelSet>();
  SerialWorker worker;

  ~EngineState() {
    cancels->CancelAll();
    worker.Close();
    worker.Join();  // queued calls settle as "model disposed"; the running one stops at its next check
  }
};

Napi::Value Reject(Napi::Env env, const std::string& msg) {
  auto d = Napi::Promise::Deferred::New(env);
  d.Reject(Napi::Error::New(env, msg).Value());
  return d.Promise();
}

class NativeModel : public Napi::ObjectWrap<NativeModel> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&NativeModel::EncodeImages>("encodeImages"),
                        InstanceMethod<&NativeModel::RopeIndex>("ropeIndex"),
                        InstanceMethod<&NativeModel::Generate>("generate"),
                        InstanceMethod<&NativeModel::CreateEpisode>("createEpisode"),
                        InstanceMethod<&NativeModel::EpisodeAppend>("episodeAppend"),
                        InstanceMethod<&NativeModel::EpisodeReset>("episodeReset"),
                        InstanceMethod<&NativeModel::EpisodeDispose>("episodeDispose"),
                        InstanceMethod<&NativeModel::Memory>("memory"), InstanceMethod<&NativeModel::Info>("info"),
                        InstanceMethod<&NativeModel::OpProfile>("opProfile"),
                        InstanceMethod<&NativeModel::Dispose>("dispose")});
  }
  explicit NativeModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeModel>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) Fail(info.Env(), "NativeModel is created by loadModel()");
    st_.reset(info[0].As<Napi::External<EngineState>>().Data());
  }

 private:
  EngineState& Live(Napi::Env env) {
    if (!st_) Fail(env, "model disposed");
    return *st_;
  }

  // Queues `work` (run on the engine thread; returns a JS-thread finisher) behind a promise. The
  // completion goes through `ch` (the call's own channel, which may already carry streamed tokens).
  using Finisher = std::function<Napi::Value(Napi::Env)>;
  Napi::Value Queue(Napi::Env env, std::shared_ptr<std::atomic<bool>> cancel, std::shared_ptr<Channel> ch,
                    std::function<Finisher()> work, std::function<void(Napi::Env)> on_settle = nullptr) {
    EngineState& st = Live(env);
    auto deferred = Napi::Promise::Deferred::New(env);
    auto cancels = st.cancels;
    cancels->Add(cancel);
    Ref();
    auto settle = [this, deferred, cancels, cancel, on_settle](Napi::Env e, Finisher fin, std::string err) {
      cancels->Remove(cancel);
      if (e) {
        if (!err.empty()) {
          deferred.Reject(Napi::Error::New(e, err).Value());
        } else {
          try {
            deferred.Resolve(fin(e));
          } catch (const Napi::Error& x) {
            deferred.Reject(x.Value());
          }
        }
      }
      if (on_settle) on_settle(e);  // after the finisher, which may read the call's context
      if (e) Unref();
    };
    const bool posted = st.worker.Post([ch, work, settle](bool closing) {
      Finisher fin;
      std::string err;
      if (closing) {
        err = "model disposed";
      } else {
        try {
          fin = work();
        } catch (const std::exception& x) {
          err = x.what();
        } catch (...) {
          err = "unknown engine error";
        }
      }
      ch->Send([settle, fin, err](Napi::Env e) { settle(e, fin, err); });
      ch->Close();
    });
    if (!posted) {
      settle(env, nullptr, "model disposed");
      ch->Close();
    }
    return deferred.Promise();
  }

  Napi::Value EncodeImages(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Model* m = Live(env).model.get();
    auto px = std::make_shared<std::vector<float>>(Floats(info[0], "pixels", true));
    auto gr = std::make_shared<std::vector<int32_t>>(Ints(info[1], "grids", true));
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    return Queue(env, cancel, std::make_shared<Channel>(env), [m, px, gr, cancel]() -> Finisher {
      auto out = std::make_shared<std::vector<float>>(m->EncodeImages(
          px->data(), static_cast<int64_t>(px->size()), gr->data(), static_cast<int64_t>(gr->size()), cancel.get()));
      return [out](Napi::Env e) -> Napi::Value {
        auto a = Napi::Float32Array::New(e, out->size());
        std::copy(out->begin(), out->end(), a.Data());
        return a;
      };
    });
  }

  Napi::Value RopeIndex(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Model* m = Live(env).model.get();
    const auto ids = Ints(info[0], "ids", true);
    const auto grids = Ints(info[1], "grids", false);
    qwen2vl::RopeIndex r;
    try {
      r = m->Rope(ids.data(), static_cast<int64_t>(ids.size()), grids.data(), static_cast<int64_t>(grids.size()));
    } catch (const std::exception& e) {
      Fail(env, e.what());
    }
    auto pos = Napi::Int32Array::New(env, r.pos.size());
    std::copy(r.pos.begin(), r.pos.end(), pos.Data());
    Napi::Object o = Napi::Object::New(env);
    o.Set("positions", pos);
    o.Set("ropeDelta", Napi::Number::New(env, static_cast<double>(r.delta)));
    return o;
  }

  // opProfile(on) -> Promise<[{op, calls, ms}]>: what the backend's op profile collected since the last
  // call (most time first; device ops in device time), then profiling on or off. Queued behind running
  // calls, so a profile covers whole calls.
  Napi::Value OpProfile(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBoolean()) Fail(env, "opProfile(on): on must be a boolean");
    const bool on = info[0].As<Napi::Boolean>().Value();
    Model* m = Live(env).model.get();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    return Queue(env, cancel, std::make_shared<Channel>(env), [m, on]() -> Finisher {
      auto ops = std::make_shared<std::vector<OpTime>>(m->backend().TakeOpProfile());
      m->backend().EnableOpProfile(on);
      return [ops](Napi::Env e) -> Napi::Value {
        Napi::Array a = Napi::Array::New(e, ops->size());
        for (size_t i = 0; i < ops->size(); ++i) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("op", (*ops)[i].op);
          o.Set("calls", static_cast<double>((*ops)[i].calls));
          o.Set("ms", (*ops)[i].ms);
          a.Set(static_cast<uint32_t>(i), o);
        }
        return a;
      };
    });
  }

  Napi::Value Generate(const Napi::CallbackInfo& info) { return Run(info, 0, 0); }

  // createEpisode() -> id: a persistent KV cache with per-layer compression state (created lazily on
  // the engine thread by its first append).
  Napi::Value CreateEpisode(const Napi::CallbackInfo& info) {
    EngineState& st = Live(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(st.next_episode++));
  }

  int64_t EpisodeId(const Napi::CallbackInfo& info, EngineState& st) {
    if (info.Length() < 1 || !info[0].IsNumber()) Fail(info.Env(), "episode id must be a number");
    const int64_t id = info[0].As<Napi::Number>().Int64Value();
    if (id <= 0 || id >= st.next_episode) Fail(info.Env(), "unknown episode " + std::to_string(id));
    return id;
  }

  // episodeAppend(id, req, onToken?) -> { promise, cancel }: one turn (see Model::RunTurn).
  Napi::Value EpisodeAppend(const Napi::CallbackInfo& info) { return Run(info, 1, EpisodeId(info, Live(info.Env()))); }

  // episodeReset(id, keepState?) / episodeDispose(id) -> Promise: queued behind running turns.
  // keepState: empty the cache but keep the method state (the reference protocol's re-prefill).
  Napi::Value EpisodeReset(const Napi::CallbackInfo& info) {
    const bool keep = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    return EpisodeOp(info, false, keep);
  }
  Napi::Value EpisodeDispose(const Napi::CallbackInfo& info) { return EpisodeOp(info, true, false); }
  Napi::Value EpisodeOp(const Napi::CallbackInfo& info, bool erase, bool keep_state) {
    Napi::Env env = info.Env();
    EngineState* st = &Live(env);
    const int64_t id = EpisodeId(info, *st);
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    return Queue(env, cancel, std::make_shared<Channel>(env), [st, id, erase, keep_state]() -> Finisher {
      auto it = st->episodes.find(id);
      if (it != st->episodes.end()) {
        if (erase) st->episodes.erase(it);
        else if (keep_state) it->second->ClearCache();
        else it->second->Reset();
      }
      return [](Napi::Env e) -> Napi::Value { return e.Undefined(); };
    });
  }

  Napi::Value Run(const Napi::CallbackInfo& info, size_t arg, int64_t episode_id) {
    Napi::Env env = info.Env();
    EngineState* stp = &Live(env);
    Model* m = stp->model.get();
    if (info.Length() < arg + 1 || !info[arg].IsObject()) Fail(env, "generate(req): req must be an object");
    const Napi::Object q = info[arg].As<Napi::Object>();
    auto req = std::make_shared<qwen2vl::GenerateRequest>();
    req->ids = Ints(q.Get("ids"), "req.ids", true);
    req->pixels = Floats(q.Get("pixels"), "req.pixels", false);
    req->grids = Ints(q.Get("grids"), "req.grids", false);
    req->max_new_tokens = Int(q, "maxNewTokens", "req", true, 0, 0, int64_t(1) << 30);
    req->sample.temperature = static_cast<float>(Num(q, "temperature", "req", false, 0));
    req->sample.top_p = static_cast<float>(Num(q, "topP", "req", false, 1));
    req->sample.top_k = static_cast<int>(Int(q, "topK", "req", false, 0, 0, int64_t(1) << 30));
    req->seed = static_cast<uint64_t>(Int(q, "seed", "req", false, 0, 0, int64_t(1) << 53));
    req->stop_tokens = Ints(q.Get("stopTokens"), "req.stopTokens", false);
    req->trace = Present(q, "trace") && q.Get("trace").ToBoolean().Value();
    req->kv = ParseKvPolicy(env, q.Get("kv"));
    if (req->sample.temperature < 0 || !(req->sample.top_p > 0 && req->sample.top_p <= 1))
      Fail(env, "req.temperature must be >= 0 and req.topP in (0, 1]");
    struct Ctx {  // touched on the JS thread only
      Napi::FunctionReference on_token;
      std::string callback_error;
    };
    Ctx* ctx = new Ctx();
    if (info.Length() > arg + 1 && info[arg + 1].IsFunction())
      ctx->on_token = Napi::Persistent(info[arg + 1].As<Napi::Function>());
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto ch = std::make_shared<Channel>(env);  // tokens, then the result, in order
    auto work = [m, stp, episode_id, req, ctx, ch, cancel]() -> Finisher {
      auto on_token = [ch, ctx, cancel](int32_t tok) {
        ch->Send([ctx, cancel, tok](Napi::Env e) {
          if (!e || ctx->on_token.IsEmpty() || !ctx->callback_error.empty()) return;
          try {
            ctx->on_token.Call({Napi::Number::New(e, tok)});
          } catch (const Napi::Error& x) {
            ctx->callback_error = "onToken threw: " + x.Message();
            cancel->store(true);
          }
        });
      };
      std::shared_ptr<qwen2vl::GenerateResult> r;
      if (episode_id) {
        auto& ep = stp->episodes[episode_id];
        if (!ep) ep = m->NewEpisode();
        r = std::make_shared<qwen2vl::GenerateResult>(m->RunTurn(*ep, *req, on_token, cancel.get()));
      } else {
        r = std::make_shared<qwen2vl::GenerateResult>(m->Generate(*req, on_token, cancel.get()));
      }
      return [r, ctx](Napi::Env e) -> Napi::Value {
        if (!ctx->callback_error.empty()) throw Napi::Error::New(e, ctx->callback_error);
        Napi::Object o = Napi::Object::New(e);
        auto toks = Napi::Int32Array::New(e, r->tokens.size());
        std::copy(r->tokens.begin(), r->tokens.end(), toks.Data());
        auto lg = Napi::Float32Array::New(e, r->prompt_logits_last.size());
        std::copy(r->prompt_logits_last.begin(), r->prompt_logits_last.end(), lg.Data());
        o.Set("tokens", toks);
        o.Set("promptLogitsLast", lg);
        o.Set("stopReason", r->stop_reason);
        Napi::Object t = Napi::Object::New(e);
        t.Set("visionMs", r->vision_ms);
        t.Set("prefillMs", r->prefill_ms);
        t.Set("decodeMs", r->decode_ms);
        t.Set("promptTokens", static_cast<double>(r->prompt_tokens));
        t.Set("generatedTokens", static_cast<double>(r->tokens.size()));
        t.Set("compressMs", r->compress_ms);
        o.Set("timings", t);
        Napi::Object kvo = Napi::Object::New(e);
        kvo.Set("bytes", static_cast<double>(r->kv_bytes));
        kvo.Set("layers", LayerReportsToJs(e, r->layers));
        o.Set("kv", kvo);
        if (r->trace) {
          Napi::Object tr = Napi::Object::New(e);
          for (const auto& kv : r->trace->arrays) {
            auto a = Napi::Float32Array::New(e, kv.second.data.size());
            std::copy(kv.second.data.begin(), kv.second.data.end(), a.Data());
            tr.Set(kv.first, a);
          }
          o.Set("trace", tr);
        }
        return o;
      };
    };
    auto settle_ctx = [ctx](Napi::Env e) {  // after every token task (same channel)
      if (!e) ctx->on_token.SuppressDestruct();
      delete ctx;
    };
    Napi::Value promise = Queue(env, cancel, ch, work, settle_ctx);
    Napi::Object handle = Napi::Object::New(env);
    handle.Set("promise", promise);
    handle.Set("cancel", Napi::Function::New(env, [cancel](const Napi::CallbackInfo&) { cancel->store(true); }, "cancel"));
    return handle;
  }

  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MemoryAccount& acc = Live(env).model->memory();
    Napi::Object o = Napi::Object::New(env);
    for (MemCategory c : {MemCategory::Weights, MemCategory::Kv, MemCategory::Activations, MemCategory::Workspace}) {
      const MemStat s = acc.Get(c);
      Napi::Object x = Napi::Object::New(env);
      x.Set("current", static_cast<double>(s.current));
      x.Set("peak", static_cast<double>(s.peak));
      o.Set(MemCategoryName(c), x);
    }
    int64_t fr = 0, tot = 0;
    if (Live(env).model->backend().DeviceMemory(&fr, &tot)) {  // the driver's figure (every process)
      Napi::Object d = Napi::Object::New(env);
      d.Set("freeBytes", static_cast<double>(fr));
      d.Set("totalBytes", static_cast<double>(tot));
      o.Set("device", d);
    }
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    EngineState& st = Live(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("threads", st.threads);
    o.Set("gemm", st.gemm);
    o.Set("weights", st.weights);
    o.Set("simd", st.simd);
    o.Set("device", st.device);
    o.Set("deviceNote", st.device_note);
    return o;
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    st_.reset();  // cancels running calls, rejects queued ones, joins the engine thread, frees memory
    return info.Env().Undefined();
  }

  std::unique_ptr<EngineState> st_;
};

struct AddonData {
  Napi::FunctionReference ctor;
};

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* data = static_cast<AddonData*>(info.Data());
  qwen2vl::LoadSpec spec;
  try {
    if (info.Length() < 1 || !info[0].IsObject()) Fail(env, "loadModel(spec): spec must be an object");
    spec = ParseSpec(info[0].As<Napi::Object>());
  } catch (const Napi::Error& e) {
    return Reject(env, e.Message());
  }
  auto deferred = Napi::Promise::Deferred::New(env);
  auto ch = std::make_shared<Channel>(env);
  EngineState* st = new EngineState();  // owned by the JS side: the NativeModel, or deleted on failure
  auto sp = std::make_shared<qwen2vl::LoadSpec>(std::move(spec));
  st->worker.Post([st, sp, ch, deferred, data](bool) {
    std::string err;
    try {
      st->model = std::make_unique<Model>(*sp);
      st->gemm = st->model->backend().GemmName();
      st->weights = st->model->WeightsMode();
      st->simd = st->model->backend().SimdName();
      st->threads = st->model->backend().Threads();
      st->device = st->model->device();
      st->device_note = st->model->device_note();
    } catch (const std::exception& e) {
      err = e.what();
    } catch (...) {
      err = "unknown error while loading the model";
    }
    ch->Send([st, err, deferred, data](Napi::Env e) {
      if (!e) return;  // environment gone: the process is exiting
      if (!err.empty()) {
        delete st;
        deferred.Reject(Napi::Error::New(e, err).Value());
        return;
      }
      try {
        deferred.Resolve(data->ctor.New({Napi::External<EngineState>::New(e, st)}));
      } catch (const Napi::Error& x) {
        deferred.Reject(x.Value());
      }
    });
    ch->Close();
  });
  return deferred.Promise();
}

Napi::Value BenchLimitsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct Worker : Napi::AsyncWorker {
    Worker(Napi::Env env, int64_t m, int64_t n, int64_t k, int64_t b, int r, int t, int64_t a)
        : Napi::AsyncWorker(env), d(Napi::Promise::Deferred::New(env)), M(m), N(n), K(k), B(b), R(r), T(t), A(a) {}
    void Execute() override {
      try {
        res = cpu::MeasureLimits(M, N, K, B, R, T, A);
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override {
      Napi::Object o = Napi::Object::New(Env());
      o.Set("sgemmGflops", res.sgemm_gflops);
      o.Set("ownSgemmGflops", res.own_sgemm_gflops);
      o.Set("bf16GemmGflops", res.bf16_gemm_gflops);
      o.Set("bf16TeamGflops", res.bf16_team_gflops);
      o.Set("bf16SplitGflops", res.bf16_split_gflops);
      o.Set("engineBf16xGflops", res.engine_bf16x_gflops);
      o.Set("openblasGflops", res.openblas_gflops);
      o.Set("openblasCore", res.openblas_core);
      o.Set("openblasNote", res.openblas_note);
      o.Set("bandwidthGBs", res.bandwidth_gbs);
      o.Set("engineBf16Gflops", res.engine_bf16_gflops);
      o.Set("engineAttnGflops", res.engine_attn_gflops);
      o.Set("engineAttnBf16Gflops", res.engine_attn_bf16_gflops);
      d.Resolve(o);
    }
    void OnError(const Napi::Error& e) override { d.Reject(e.Value()); }
    Napi::Promise::Deferred d;
    int64_t M, N, K, B;
    int R, T;
    int64_t A;
    cpu::BenchLimits res;
  };
  try {
    if (info.Length() < 1 || !info[0].IsObject()) Fail(env, "benchLimits(opts): opts must be an object");
    const Napi::Object o = info[0].As<Napi::Object>();
    auto* w = new Worker(env, Int(o, "gemmM", "opts", false, 1024, 1, 65536), Int(o, "gemmN", "opts", false, 1024, 1, 65536),
                         Int(o, "gemmK", "opts", false, 1024, 1, 65536),
                         Int(o, "bandwidthBytes", "opts", false, 256 << 20, 4096, int64_t(1) << 36),
                         static_cast<int>(Int(o, "reps", "opts", false, 3, 1, 1000)),
                         static_cast<int>(Int(o, "threads", "opts", false, 0, 0, 1024)),
                         Int(o, "attnTokens", "opts", false, 0, 0, 65536));
    Napi::Promise p = w->d.Promise();
    w->Queue();
    return p;
  } catch (const Napi::Error& e) {
    return Reject(env, e.Message());
  }
}

// cudaInfo([{ freeMemory }]): what CUDA this build has and which devices the runtime sees (never throws for
// a missing driver: the reason is in `error`). freeBytes is null unless freeMemory (see QueryCudaInfo).
Napi::Value CudaInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array archs = Napi::Array::New(env), devices = Napi::Array::New(env);
#ifdef STARKV_HAVE_CUDA
  const bool free_memory = info.Length() > 0 && info[0].IsObject() &&
                           info[0].As<Napi::Object>().Get("freeMemory").ToBoolean().Value();
  const cuda::CudaInfo ci = cuda::QueryCudaInfo(free_memory);
  for (size_t i = 0; i < ci.archs.size(); ++i) archs.Set(static_cast<uint32_t>(i), ci.archs[i]);
  for (size_t i = 0; i < ci.devices.size(); ++i) {
    const cuda::DeviceInfo& d = ci.devices[i];
    Napi::Object x = Napi::Object::New(env);
    x.Set("index", d.index);
    x.Set("name", d.name);
    x.Set("cc", d.cc);
    x.Set("totalBytes", static_cast<double>(d.total_bytes));
    if (d.free_bytes >= 0) x.Set("freeBytes", static_cast<double>(d.free_bytes));
    else x.Set("freeBytes", env.Null());
    devices.Set(static_cast<uint32_t>(i), x);
  }
  o.Set("compiled", true);
  o.Set("error", ci.error.empty() ? env.Null() : Napi::String::New(env, ci.error));
#else
  o.Set("compiled", false);
  o.Set("error", "built without CUDA");
#endif
  o.Set("archs", archs);
  o.Set("devices", devices);
  return o;
}

// cpuInfo() -> {simd, onednn, bf16Matmul, bf16Impl}: the CPU's vector units as the engine uses them, and
// whether --cpu-matmul bf16 can run here (oneDNN's bf16 matmul on a native kernel) and which kernel.
Napi::Value CpuInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::string impl;  // Bf16MatmulFast says "built without oneDNN" where there is none
  const bool fast = cpu::Bf16MatmulFast(&impl);
  o.Set("simd", cpu::SimdSummary());
  o.Set("onednn", cpu::HaveDnnl());
  o.Set("bf16Matmul", fast);
  o.Set("bf16Impl", impl);
  return o;
}

// cudaBench({device?, copyBytes?, gemmSize?, reps?, attnTokens?}) -> {device, bandwidthGBs, bf16GemmTflops,
// gemm, attnTokens, attnVisionTcTflops, attnVisionFp32Tflops, attnTextTcTflops, attnTextFp32Tflops}: the
// GPU's copy bandwidth and bf16 GEMM rate, and (attnTokens > 0) the backend's attention rates on its
// tensor-core and fp32 kernels; rejects with "no CUDA device: ..." without one.
Napi::Value CudaBenchJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
#ifdef STARKV_HAVE_CUDA
  struct Worker : Napi::AsyncWorker {
    Worker(Napi::Env env, int dev, int64_t bytes, int size, int reps, int64_t attn)
        : Napi::AsyncWorker(env), d(Napi::Promise::Deferred::New(env)), dev(dev), bytes(bytes), size(size), reps(reps), attn(attn) {}
    void Execute() override {
      try {
        res = cuda::MeasureCuda(dev, bytes, size, reps, attn);
      } catch (const std::exception& e) {
        SetError(e.what());
      }
    }
    void OnOK() override {
      Napi::Object o = Napi::Object::New(Env());
      o.Set("device", res.device);
      o.Set("bandwidthGBs", res.bandwidth_gbs);
      o.Set("bf16GemmTflops", res.bf16_gemm_tflops);
      o.Set("gemm", res.gemm);
      o.Set("attnTokens", static_cast<double>(res.attn_tokens));
      o.Set("attnVisionTcTflops", res.attn_vision_tc_tflops);
      o.Set("attnVisionFp32Tflops", res.attn_vision_fp32_tflops);
      o.Set("attnTextTcTflops", res.attn_text_tc_tflops);
      o.Set("attnTextFp32Tflops", res.attn_text_fp32_tflops);
      d.Resolve(o);
    }
    void OnError(const Napi::Error& e) override { d.Reject(e.Value()); }
    Napi::Promise::Deferred d;
    int dev;
    int64_t bytes;
    int size, reps;
    int64_t attn;
    cuda::CudaBenchResult res;
  };
  try {
    Napi::Object o = info.Length() > 0 && info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
    auto* w = new Worker(env, static_cast<int>(Int(o, "device", "opts", false, 0, 0, 1023)),
                         Int(o, "copyBytes", "opts", false, int64_t(1) << 30, 1 << 20, int64_t(1) << 36),
                         static_cast<int>(Int(o, "gemmSize", "opts", false, 4096, 64, 32768)),
                         static_cast<int>(Int(o, "reps", "opts", false, 5, 1, 1000)),
                         Int(o, "attnTokens", "opts", false, 0, 0, 65536));
    Napi::Promise p = w->d.Promise();
    w->Queue();
    return p;
  } catch (const Napi::Error& e) {
    return Reject(env, e.Message());
  }
#else
  return Reject(env, "built without CUDA");
#endif
}

}  // namespace

void RegisterModel(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->ctor = Napi::Persistent(NativeModel::Define(env));
  env.AddCleanupHook([data] { delete data; });
  exports.Set("loadModel", Napi::Function::New(env, LoadModel, "loadModel", data));
  exports.Set("benchLimits", Napi::Function::New(env, BenchLimitsJs, "benchLimits"));
  exports.Set("cudaInfo", Napi::Function::New(env, CudaInfoJs, "cudaInfo"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfoJs, "cpuInfo"));
  exports.Set("cudaBench", Napi::Function::New(env, CudaBenchJs, "cudaBench"));
}

}  // namespace starkv::binding
