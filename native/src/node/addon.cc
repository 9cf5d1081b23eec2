// Module entry: version(), buildFlags(), CancelToken, and the error conversion used everywhere.
#include "node/addon.h"

#include <new>

#include "backends/backend.h"
#include "runtime/api.h"
#include "runtime/build_info.h"

namespace kiln::node {

CapturedError CapturedError::from(const std::exception& e) {
  CapturedError out;
  out.message = e.what();
  if (const auto* k = dynamic_cast<const KilnError*>(&e)) {
    out.code = errorCodeName(k->code());
  } else if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    out.code = errorCodeName(ErrorCode::OutOfMemory);
    out.message = "out of memory";
  } else {
    out.code = errorCodeName(ErrorCode::Internal);
  }
  return out;
}

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, code));
  return error;
}

Napi::Error makeError(Napi::Env env, const CapturedError& error) { return makeError(env, error.code, error.message); }

std::pair<const uint8_t*, size_t> bytesArg(const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw makeError(value.Env(), "INVALID_ARGUMENT", std::string(what) + " must be a Uint8Array");
  }
  Napi::Uint8Array array = value.As<Napi::Uint8Array>();
  return {array.Data(), array.ByteLength()};
}

Napi::Function CancelToken::define(Napi::Env env) {
  return DefineClass(env, "CancelToken",
                     {InstanceMethod<&CancelToken::cancel>("cancel"),
                      InstanceAccessor<&CancelToken::cancelled>("cancelled")});
}

CancelToken::CancelToken(const Napi::CallbackInfo& info) : Napi::ObjectWrap<CancelToken>(info) {}

Napi::Value CancelToken::cancel(const Napi::CallbackInfo& info) {
  flag_->store(true);
  return info.Env().Undefined();
}

Napi::Value CancelToken::cancelled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), flag_->load()); }

namespace {

Napi::Value version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), builderVersion()); }

Napi::Value flags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const BuildFlags& f = buildFlags();
    Napi::Object out = Napi::Object::New(env);
    out.Set("version", f.version);
    out.Set("buildType", f.buildType);
    out.Set("compiler", f.compiler);
    out.Set("processor", f.processor);
    out.Set("avx2Kernels", f.avx2Kernels);
    out.Set("avx2Available", f.avx2Available);
    out.Set("cuda", f.cuda);
    out.Set("cudaVersion", f.cudaVersion);
    out.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
    Napi::Array backends = Napi::Array::New(env);
    backends.Set(uint32_t(0), "cpu");
    if (f.cuda) backends.Set(uint32_t(1), "cuda");
    out.Set("backends", backends);
    out.Set("cpuTarget", createBackend("cpu")->target());
    return out;
  });
}

}  // namespace

Napi::Object init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  Napi::Function token = CancelToken::define(env);
  data->cancelToken = Napi::Persistent(token);
  exports.Set("CancelToken", token);
  exports.Set("version", Napi::Function::New(env, version, "version"));
  exports.Set("buildFlags", Napi::Function::New(env, flags, "buildFlags"));
  initBuild(env, exports);
  initEngine(env, exports);
  return exports;
}

}  // namespace kiln::node

// NODE_API_MODULE needs an unqualified function name.
static Napi::Object InitKiln(Napi::Env env, Napi::Object exports) { return kiln::node::init(env, exports); }
NODE_API_MODULE(kiln, InitKiln)
