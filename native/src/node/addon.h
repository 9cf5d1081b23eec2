// Shared pieces of the Node addon (node-addon-api). The rule of this folder: no C++ exception
// crosses into JavaScript. Every entry point catches, and a KilnError becomes a JS Error whose
// `code` is errorCodeName(code) ("SHAPE_MISMATCH", ...) and whose message is the engine's message.
#pragma once
#include <napi.h>

#include <atomic>
#include <exception>
#include <memory>
#include <string>

#include "core/error.h"

namespace kiln::node {

// An error captured on a worker thread, rethrown on the JS thread.
struct CapturedError {
  std::string code = "INTERNAL";
  std::string message;
  static CapturedError from(const std::exception& e);
};

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message);
Napi::Error makeError(Napi::Env env, const CapturedError& error);
// Wraps a JS-thread entry point: exceptions become thrown JS errors.
template <class Fn>
Napi::Value guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error& e) {
    throw;
  } catch (const std::exception& e) {
    makeError(env, CapturedError::from(e)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// A cancellation handle: JavaScript calls cancel() (the TypeScript layer wires an AbortSignal to
// it); a running build polls the flag between stages.
class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit CancelToken(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag() const { return flag_; }

 private:
  Napi::Value cancel(const Napi::CallbackInfo& info);
  Napi::Value cancelled(const Napi::CallbackInfo& info);
  std::shared_ptr<std::atomic<bool>> flag_ = std::make_shared<std::atomic<bool>>(false);
};

// Per-addon-instance state (one per Node environment / worker thread).
struct AddonData {
  Napi::FunctionReference cancelToken;
  Napi::FunctionReference engine;
  Napi::FunctionReference context;
};

// Module parts, each defined in its own file.
void initBuild(Napi::Env env, Napi::Object exports);    // build(), inspect()
void initEngine(Napi::Env env, Napi::Object exports);   // loadEngine(), Engine, Context

Napi::Object init(Napi::Env env, Napi::Object exports);

// Bytes of a Uint8Array/Buffer argument (throws a TypeError naming `what` otherwise).
std::pair<const uint8_t*, size_t> bytesArg(const Napi::Value& value, const char* what);

}  // namespace kiln::node
