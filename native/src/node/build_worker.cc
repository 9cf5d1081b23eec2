// build(model, options, onProgress?, cancelToken?) and inspect(model, modelDirectory?): both run on
// the libuv thread pool and settle a Promise; build progress reaches JavaScript through the worker's
// thread-safe progress queue.
#include <map>
#include <memory>
#include <vector>

#include "node/addon.h"
#include "node/tensors.h"
#include "plan/profiles.h"
#include "runtime/api.h"

namespace kiln::node {
namespace {

Precision parsePrecision(Napi::Env env, const std::string& name) {
  if (name == "fp32") return Precision::Fp32;
  if (name == "fp16") return Precision::Fp16;
  if (name == "int8") return Precision::Int8;
  throw makeError(env, "INVALID_ARGUMENT", "precision must be fp32, fp16 or int8, got '" + name + "'");
}

// One profile from JS: either the CLI spelling ("x:1x3,4x3,8x3") or {input: {min, opt, max}}.
Profile parseProfileArg(const Napi::Value& value, size_t index) {
  Napi::Env env = value.Env();
  const std::string what = "profiles[" + std::to_string(index) + "]";
  if (value.IsString()) return parseProfile(value.As<Napi::String>().Utf8Value());
  if (!value.IsObject()) throw makeError(env, "INVALID_ARGUMENT", what + " must be a string or an object");
  Profile profile;
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Array names = obj.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value range = obj.Get(name);
    if (!range.IsObject()) throw makeError(env, "INVALID_ARGUMENT", what + "." + name + " must be {min, opt, max}");
    Napi::Object r = range.As<Napi::Object>();
    profile.min[name] = shapeFromJs(r.Get("min"), what + "." + name + ".min");
    profile.opt[name] = shapeFromJs(r.Get("opt"), what + "." + name + ".opt");
    profile.max[name] = shapeFromJs(r.Get("max"), what + "." + name + ".max");
  }
  return profile;
}

BuildOptions parseOptions(const Napi::Value& value) {
  Napi::Env env = value.Env();
  BuildOptions options;
  if (value.IsUndefined() || value.IsNull()) return options;
  if (!value.IsObject()) throw makeError(env, "INVALID_ARGUMENT", "build options must be an object");
  Napi::Object obj = value.As<Napi::Object>();
  if (obj.Has("backend") && !obj.Get("backend").IsUndefined())
    options.backend = obj.Get("backend").ToString().Utf8Value();
  if (obj.Has("precision") && !obj.Get("precision").IsUndefined())
    options.precision = parsePrecision(env, obj.Get("precision").ToString().Utf8Value());
  if (obj.Has("optimizationLevel") && !obj.Get("optimizationLevel").IsUndefined()) {
    Napi::Value level = obj.Get("optimizationLevel");
    if (!level.IsNumber()) throw makeError(env, "INVALID_ARGUMENT", "optimizationLevel must be 0, 1 or 2");
    options.optimizationLevel = level.As<Napi::Number>().Int32Value();
  }
  if (obj.Has("planMemory") && !obj.Get("planMemory").IsUndefined())
    options.planMemory = obj.Get("planMemory").ToBoolean().Value();
  if (obj.Has("modelDirectory") && !obj.Get("modelDirectory").IsUndefined())
    options.modelDirectory = obj.Get("modelDirectory").ToString().Utf8Value();
  if (obj.Has("profiles") && !obj.Get("profiles").IsUndefined()) {
    Napi::Value profiles = obj.Get("profiles");
    if (!profiles.IsArray()) throw makeError(env, "INVALID_ARGUMENT", "profiles must be an array");
    Napi::Array array = profiles.As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); ++i) options.profiles.push_back(parseProfileArg(array.Get(i), i));
  }
  if (obj.Has("tf32") && !obj.Get("tf32").IsUndefined()) options.tf32 = obj.Get("tf32").ToBoolean().Value();
  // INT8: {inputName: tensor with the samples stacked along dim 0}, copied here on the JS thread.
  if (obj.Has("calibration") && !obj.Get("calibration").IsUndefined() && !obj.Get("calibration").IsNull()) {
    Napi::Value cal = obj.Get("calibration");
    if (!cal.IsObject() || cal.IsArray())
      throw makeError(env, "INVALID_ARGUMENT", "calibration must be an object mapping input names to tensors");
    Napi::Object calObj = cal.As<Napi::Object>();
    Napi::Array names = calObj.GetPropertyNames();
    std::map<std::string, Tensor> batch;
    for (uint32_t i = 0; i < names.Length(); ++i) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      Tensor t = tensorFromJs(calObj.Get(name), "calibration." + name);
      if (t.shape.empty())
        throw makeError(env, "INVALID_ARGUMENT", "calibration." + name + " needs a first dim (the sample index)");
      batch.emplace(name, std::move(t));
    }
    if (!batch.empty()) options.calibrationBatches.push_back(std::move(batch));
  }
  if (obj.Has("calibrationMethod") && !obj.Get("calibrationMethod").IsUndefined()) {
    const std::string m = obj.Get("calibrationMethod").ToString().Utf8Value();
    if (m == "entropy") options.calibrationMethod = CalibrationMethod::Entropy;
    else if (m == "percentile") options.calibrationMethod = CalibrationMethod::Percentile;
    else if (m == "minmax") options.calibrationMethod = CalibrationMethod::MinMax;
    else throw makeError(env, "INVALID_ARGUMENT", "calibrationMethod must be entropy, percentile or minmax, got '" + m + "'");
  }
  if (obj.Has("calibrationPercentile") && !obj.Get("calibrationPercentile").IsUndefined()) {
    Napi::Value p = obj.Get("calibrationPercentile");
    const double v = p.IsNumber() ? p.As<Napi::Number>().DoubleValue() : -1;
    if (!(v > 0 && v <= 100)) throw makeError(env, "INVALID_ARGUMENT", "calibrationPercentile must be in (0, 100]");
    options.calibrationPercentile = v;
  }
  return options;
}

Napi::Object reportToJs(Napi::Env env, const BuildReport& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("nodesBefore", Napi::Number::New(env, static_cast<double>(r.nodesBefore)));
  out.Set("nodesAfter", Napi::Number::New(env, static_cast<double>(r.nodesAfter)));
  Napi::Object fusions = Napi::Object::New(env);
  for (const auto& [name, count] : r.fusions) fusions.Set(name, Napi::Number::New(env, count));
  out.Set("fusions", fusions);
  Napi::Array layers = Napi::Array::New(env, r.layers.size());
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const LayerReport& l = r.layers[i];
    Napi::Object layer = Napi::Object::New(env);
    layer.Set("name", l.name);
    layer.Set("opType", l.opType);
    layer.Set("kernel", l.kernel);
    layer.Set("outputShape", l.outputShape);
    layer.Set("timeMs", Napi::Number::New(env, l.timeMs));
    layer.Set("precision", l.precision);
    layers.Set(static_cast<uint32_t>(i), layer);
  }
  out.Set("layers", layers);
  out.Set("peakMemoryBytes", Napi::Number::New(env, static_cast<double>(r.peakMemoryBytes)));
  out.Set("weightBytes", Napi::Number::New(env, static_cast<double>(r.weightBytes)));
  Napi::Array warnings = Napi::Array::New(env, r.warnings.size());
  for (size_t i = 0; i < r.warnings.size(); ++i) warnings.Set(static_cast<uint32_t>(i), r.warnings[i]);
  out.Set("warnings", warnings);
  return out;
}

class BuildWorker final : public Napi::AsyncProgressQueueWorker<BuildProgress> {
 public:
  BuildWorker(Napi::Env env, std::vector<uint8_t> model, BuildOptions options, Napi::Function onProgress,
              std::shared_ptr<std::atomic<bool>> cancel)
      : Napi::AsyncProgressQueueWorker<BuildProgress>(env, "kiln.build"),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        options_(std::move(options)),
        cancel_(std::move(cancel)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      BuildOptions options = options_;
      options.cancel = cancel_.get();
      options.onProgress = [&progress](const BuildProgress& p) { progress.Send(&p, 1); };
      result_ = buildEngine(model_.data(), model_.size(), options);
      model_.clear();
      model_.shrink_to_fit();
    } catch (const std::exception& e) {
      error_ = CapturedError::from(e);
      failed_ = true;
    }
  }

  void OnProgress(const BuildProgress* data, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    for (size_t i = 0; i < count; ++i) {
      Napi::Object event = Napi::Object::New(env);
      event.Set("stage", data[i].stage);
      event.Set("fraction", Napi::Number::New(env, data[i].fraction));
      event.Set("message", data[i].message);
      // A throwing progress callback must not take the build down with an uncaught exception.
      try {
        onProgress_.Call({event});
      } catch (const Napi::Error&) {
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(makeError(env, error_).Value());
      return;
    }
    Napi::Object out = Napi::Object::New(env);
    Napi::Uint8Array engine = Napi::Uint8Array::New(env, result_.engine.size());
    if (!result_.engine.empty()) std::memcpy(engine.Data(), result_.engine.data(), result_.engine.size());
    out.Set("engine", engine);
    out.Set("report", reportToJs(env, result_.report));
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> model_;
  BuildOptions options_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  Napi::FunctionReference onProgress_;
  BuildResult result_;
  CapturedError error_;
  bool failed_ = false;
};

Napi::Value build(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto [data, size] = bytesArg(info[0], "model");
    // The model bytes are copied: the worker must not read a buffer JavaScript may change or detach.
    std::vector<uint8_t> model(data, data + size);
    BuildOptions options = parseOptions(info[1]);
    Napi::Function onProgress;
    if (info.Length() > 2 && info[2].IsFunction()) onProgress = info[2].As<Napi::Function>();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    if (info.Length() > 3 && info[3].IsObject()) {
      AddonData* addon = env.GetInstanceData<AddonData>();
      Napi::Object token = info[3].As<Napi::Object>();
      if (!token.InstanceOf(addon->cancelToken.Value()))
        throw makeError(env, "INVALID_ARGUMENT", "the 4th argument of build must be a CancelToken");
      cancel = CancelToken::Unwrap(token)->flag();
    }
    auto* worker = new BuildWorker(env, std::move(model), std::move(options), onProgress, cancel);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

class InspectWorker final : public Napi::AsyncWorker {
 public:
  InspectWorker(Napi::Env env, std::vector<uint8_t> model, std::string directory)
      : Napi::AsyncWorker(env, "kiln.inspect"),
        deferred_(Napi::Promise::Deferred::New(env)),
        model_(std::move(model)),
        directory_(std::move(directory)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    try {
      signature_ = inspectModel(model_.data(), model_.size(), directory_);
    } catch (const std::exception& e) {
      error_ = CapturedError::from(e);
      failed_ = true;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(makeError(env, error_).Value());
      return;
    }
    const ModelSignature& s = signature_;
    Napi::Object out = Napi::Object::New(env);
    Napi::Array inputs = Napi::Array::New(env, s.inputs.size());
    for (size_t i = 0; i < s.inputs.size(); ++i)
      inputs.Set(static_cast<uint32_t>(i), tensorInfoToJs(env, s.inputs[i].name, s.inputs[i].dtype, s.inputs[i].shape));
    Napi::Array outputs = Napi::Array::New(env, s.outputs.size());
    for (size_t i = 0; i < s.outputs.size(); ++i)
      outputs.Set(static_cast<uint32_t>(i), tensorInfoToJs(env, s.outputs[i].name, s.outputs[i].dtype, s.outputs[i].shape));
    out.Set("inputs", inputs);
    out.Set("outputs", outputs);
    Napi::Object opsets = Napi::Object::New(env);
    for (const auto& [domain, version] : s.opsets) opsets.Set(domain, Napi::Number::New(env, static_cast<double>(version)));
    out.Set("opsets", opsets);
    Napi::Array operators = Napi::Array::New(env, s.operators.size());
    for (size_t i = 0; i < s.operators.size(); ++i) operators.Set(static_cast<uint32_t>(i), s.operators[i]);
    out.Set("operators", operators);
    Napi::Array unsupported = Napi::Array::New(env, s.unsupported.size());
    for (size_t i = 0; i < s.unsupported.size(); ++i) unsupported.Set(static_cast<uint32_t>(i), s.unsupported[i]);
    out.Set("unsupported", unsupported);
    out.Set("parameterCount", Napi::Number::New(env, static_cast<double>(s.parameterCount)));
    out.Set("producer", s.producer);
    out.Set("graphName", s.graphName);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<uint8_t> model_;
  std::string directory_;
  ModelSignature signature_;
  CapturedError error_;
  bool failed_ = false;
};

Napi::Value inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto [data, size] = bytesArg(info[0], "model");
    std::string directory;
    if (info.Length() > 1 && info[1].IsString()) directory = info[1].As<Napi::String>().Utf8Value();
    auto* worker = new InspectWorker(env, std::vector<uint8_t>(data, data + size), directory);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  });
}

}  // namespace

void initBuild(Napi::Env env, Napi::Object exports) {
  exports.Set("build", Napi::Function::New(env, build, "build"));
  exports.Set("inspect", Napi::Function::New(env, inspect, "inspect"));
}

}  // namespace kiln::node
