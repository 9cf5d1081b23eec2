// loadEngine(bytes) -> Engine {inputs, outputs, profiles, backend, target, precision,
// deviceMemoryBytes, weightBytes, describe(), createContext()} and Context {run(inputs) -> Promise}.
// A run copies its inputs on the JS thread, executes on the libuv pool, and copies the outputs
// into fresh typed arrays; the Context's JS object is kept alive until its run settles.
#include <memory>
#include <vector>

#include "node/addon.h"
#include "node/tensors.h"
#include "plan/profiles.h"
#include "runtime/api.h"

namespace kiln::node {
namespace {

class EngineWrap final : public Napi::ObjectWrap<EngineWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Engine",
                       {InstanceAccessor<&EngineWrap::inputs>("inputs"),
                        InstanceAccessor<&EngineWrap::outputs>("outputs"),
                        InstanceAccessor<&EngineWrap::profiles>("profiles"),
                        InstanceAccessor<&EngineWrap::backend>("backend"),
                        InstanceAccessor<&EngineWrap::target>("target"),
                        InstanceAccessor<&EngineWrap::precision>("precision"),
                        InstanceAccessor<&EngineWrap::deviceMemoryBytes>("deviceMemoryBytes"),
                        InstanceAccessor<&EngineWrap::weightBytes>("weightBytes"),
                        InstanceMethod<&EngineWrap::describe>("describe"),
                        InstanceMethod<&EngineWrap::createContext>("createContext")});
  }
  explicit EngineWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EngineWrap>(info) {}
  void attach(std::shared_ptr<Engine> engine) { engine_ = std::move(engine); }
  const std::shared_ptr<Engine>& engine(Napi::Env env) const {
    if (!engine_) throw makeError(env, "INVALID_ARGUMENT", "Engine objects come from loadEngine(bytes)");
    return engine_;
  }

 private:
  Napi::Value infos(Napi::Env env, const std::vector<TensorInfo>& list) const {
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i)
      out.Set(static_cast<uint32_t>(i), tensorInfoToJs(env, list[i].name, list[i].dtype, list[i].shape));
    return out;
  }
  Napi::Value inputs(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return infos(info.Env(), engine(info.Env())->inputs()); });
  }
  Napi::Value outputs(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return infos(info.Env(), engine(info.Env())->outputs()); });
  }
  Napi::Value profiles(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      const std::vector<Profile>& list = engine(env)->profiles();
      Napi::Array out = Napi::Array::New(env, list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        Napi::Object profile = Napi::Object::New(env);
        for (const auto& [name, min] : list[i].min) {
          Napi::Object range = Napi::Object::New(env);
          range.Set("min", shapeToJs(env, min));
          range.Set("opt", shapeToJs(env, list[i].opt.count(name) ? list[i].opt.at(name) : min));
          range.Set("max", shapeToJs(env, list[i].max.count(name) ? list[i].max.at(name) : min));
          profile.Set(name, range);
        }
        out.Set(static_cast<uint32_t>(i), profile);
      }
      return out;
    });
  }
  Napi::Value backend(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::String::New(info.Env(), engine(info.Env())->backend()); });
  }
  Napi::Value target(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::String::New(info.Env(), engine(info.Env())->target()); });
  }
  Napi::Value precision(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::String::New(info.Env(), precisionName(engine(info.Env())->precision())); });
  }
  Napi::Value deviceMemoryBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] {
      return Napi::Number::New(info.Env(), static_cast<double>(engine(info.Env())->deviceMemoryBytes()));
    });
  }
  Napi::Value weightBytes(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] {
      return Napi::Number::New(info.Env(), static_cast<double>(engine(info.Env())->weightBytes()));
    });
  }
  Napi::Value describe(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&] { return Napi::String::New(info.Env(), engine(info.Env())->describeJson()); });
  }
  Napi::Value createContext(const Napi::CallbackInfo& info);

  std::shared_ptr<Engine> engine_;
};

class ContextWrap final : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {InstanceMethod<&ContextWrap::run>("run"), InstanceMethod<&ContextWrap::runSync>("runSync"),
                        InstanceAccessor<&ContextWrap::busy>("busy")});
  }
  explicit ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {}
  void attach(std::shared_ptr<Engine> engine, std::unique_ptr<ExecutionContext> context) {
    engine_ = std::move(engine);
    context_ = std::move(context);
  }
  ExecutionContext* context() const { return context_.get(); }
  void finished() { busy_ = false; }

 private:
  Napi::Value run(const Napi::CallbackInfo& info);
  // The same run on the calling thread (for runs shorter than the thread-pool hop; see engine.ts).
  Napi::Value runSync(const Napi::CallbackInfo& info);
  std::vector<std::pair<std::string, Tensor>> inputsFromJs(const Napi::CallbackInfo& info) const;
  Napi::Value busy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), busy_); }

  std::shared_ptr<Engine> engine_;  // the context's engine must outlive it
  std::unique_ptr<ExecutionContext> context_;
  bool busy_ = false;
};

// { outputs: {name: tensor}, computeMs, gpuTimeMs? }
Napi::Object resultToJs(Napi::Env env, const RunResult& result) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Object outputs = Napi::Object::New(env);
  for (const auto& [name, tensor] : result.outputs) outputs.Set(name, tensorToJs(env, tensor));
  out.Set("outputs", outputs);
  out.Set("computeMs", Napi::Number::New(env, result.computeMs));
  if (result.gpuMs >= 0) out.Set("gpuTimeMs", Napi::Number::New(env, result.gpuMs));
  return out;
}

class RunWorker final : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, ContextWrap* wrap, Napi::Object self,
            std::vector<std::pair<std::string, Tensor>> inputs)
      : Napi::AsyncWorker(env, "kiln.run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        wrap_(wrap),
        self_(Napi::Persistent(self)),
        inputs_(std::move(inputs)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      result_ = wrap_->context()->run(inputs_);
    } catch (const std::exception& e) {
      error_ = CapturedError::from(e);
      failed_ = true;
    }
    inputs_.clear();
  }

  void OnOK() override {
    Napi::Env env = Env();
    wrap_->finished();
    if (failed_) {
      deferred_.Reject(makeError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(resultToJs(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override {
    wrap_->finished();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  ContextWrap* wrap_;
  Napi::ObjectReference self_;  // keeps the Context (and so its engine) alive during the run
  std::vector<std::pair<std::string, Tensor>> inputs_;
  RunResult result_;
  CapturedError error_;
  bool failed_ = false;
};

Napi::Value EngineWrap::createContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const std::shared_ptr<Engine>& e = engine(env);
    std::unique_ptr<ExecutionContext> context = e->createContext();
    AddonData* addon = env.GetInstanceData<AddonData>();
    Napi::Object object = addon->context.New({});
    ContextWrap::Unwrap(object)->attach(e, std::move(context));
    return object;
  });
}

std::vector<std::pair<std::string, Tensor>> ContextWrap::inputsFromJs(const Napi::CallbackInfo& info) const {
  Napi::Env env = info.Env();
  if (!context_) throw makeError(env, "INVALID_ARGUMENT", "Context objects come from engine.createContext()");
  if (busy_)
    throw makeError(env, "INVALID_ARGUMENT",
                    "this context is already running; await the previous run or create another context");
  if (info.Length() < 1 || !info[0].IsObject() || info[0].IsArray())
    throw makeError(env, "INVALID_ARGUMENT", "run() takes an object mapping input names to tensors");
  Napi::Object named = info[0].As<Napi::Object>();
  Napi::Array names = named.GetPropertyNames();
  std::vector<std::pair<std::string, Tensor>> inputs;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    inputs.emplace_back(name, tensorFromJs(named.Get(name), name));
  }
  return inputs;
}

Napi::Value ContextWrap::runSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value { return resultToJs(env, context_->run(inputsFromJs(info))); });
}

Napi::Value ContextWrap::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto* worker = new RunWorker(env, this, info.This().As<Napi::Object>(), inputsFromJs(info));
    busy_ = true;
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

Napi::Value loadEngine(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto [data, size] = bytesArg(info[0], "engine");
    std::shared_ptr<Engine> engine = Engine::load(data, size);
    AddonData* addon = env.GetInstanceData<AddonData>();
    Napi::Object object = addon->engine.New({});
    EngineWrap::Unwrap(object)->attach(std::move(engine));
    return object;
  });
}

}  // namespace

void initEngine(Napi::Env env, Napi::Object exports) {
  AddonData* addon = env.GetInstanceData<AddonData>();
  Napi::Function engine = EngineWrap::define(env);
  Napi::Function context = ContextWrap::define(env);
  addon->engine = Napi::Persistent(engine);
  addon->context = Napi::Persistent(context);
  exports.Set("Engine", engine);
  exports.Set("Context", context);
  exports.Set("loadEngine", Napi::Function::New(env, loadEngine, "loadEngine"));
}

}  // namespace kiln::node
