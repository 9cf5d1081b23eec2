#include "graph/fused_ops.h"

#include "core/error.h"

namespace kiln {

Activation parseActivation(const std::string& name) {
  if (name.empty()) return Activation::None;
  if (name == "Relu") return Activation::Relu;
  if (name == "LeakyRelu") return Activation::LeakyRelu;
  if (name == "Sigmoid") return Activation::Sigmoid;
  if (name == "Tanh") return Activation::Tanh;
  if (name == "Clip") return Activation::Clip;
  if (name == "HardSigmoid") return Activation::HardSigmoid;
  if (name == "HardSwish") return Activation::HardSwish;
  if (name == "Gelu") return Activation::Gelu;
  if (name == "GeluTanh") return Activation::GeluTanh;
  if (name == "Silu") return Activation::Silu;
  fail(ErrorCode::InvalidModel, "unknown fused activation '" + name + "'");
}

const char* activationName(Activation a) {
  switch (a) {
    case Activation::None: return "";
    case Activation::Relu: return "Relu";
    case Activation::LeakyRelu: return "LeakyRelu";
    case Activation::Sigmoid: return "Sigmoid";
    case Activation::Tanh: return "Tanh";
    case Activation::Clip: return "Clip";
    case Activation::HardSigmoid: return "HardSigmoid";
    case Activation::HardSwish: return "HardSwish";
    case Activation::Gelu: return "Gelu";
    case Activation::GeluTanh: return "GeluTanh";
    case Activation::Silu: return "Silu";
  }
  return "";
}

}  // namespace kiln
