#include <algorithm>
#include <cstdio>
#include <tuple>

#include "backends/kernel.h"
#include "core/error.h"

namespace kiln {

Tensor& KernelContext::allocateOutput(size_t i, DType dtype, const Shape& shape) {
  KILN_CHECK(i < outputs.size(), Internal,
             "kernel for node '" + node.name + "' (" + node.opType + ") allocated output " + std::to_string(i) +
                 " but the node has " + std::to_string(outputs.size()) + " outputs");
  if (outputs[i] == nullptr) {
    // The model omitted this optional output: give the kernel somewhere to write and drop it later.
    discardedOutputs.push_back(std::make_shared<Tensor>(Tensor::allocate(dtype, shape)));
    return *discardedOutputs.back();
  }
  *outputs[i] = Tensor::allocate(dtype, shape);
  return *outputs[i];
}

namespace {
std::string canonicalDomain(const std::string& d) { return d == "ai.onnx" ? std::string() : d; }
auto defKey(const KernelDef& d) { return std::tie(d.backend, d.domain, d.opType, d.sinceVersion); }
}  // namespace

KernelRegistry& KernelRegistry::instance() {
  static KernelRegistry registry;
  return registry;
}

void KernelRegistry::add(KernelDef def) {
  def.domain = canonicalDomain(def.domain);
  // Sorted by (backend, domain, op, version) for binary search; registration happens during static
  // initialisation, before any find(), so returned pointers stay valid.
  auto pos = std::lower_bound(defs_.begin(), defs_.end(), def,
                              [](const KernelDef& a, const KernelDef& b) { return defKey(a) < defKey(b); });
  if (pos != defs_.end() && defKey(*pos) == defKey(def)) {
    // A duplicate is a team bug; throwing during static initialisation would abort the process.
    std::fprintf(stderr, "kiln: duplicate kernel %s/%s:%s since %lld ignored\n", def.backend.c_str(),
                 def.domain.c_str(), def.opType.c_str(), static_cast<long long>(def.sinceVersion));
    return;
  }
  defs_.insert(pos, std::move(def));
}

const KernelDef* KernelRegistry::find(const std::string& backend, const std::string& domain, const std::string& opType,
                                      int64_t opset) const {
  std::string d = canonicalDomain(domain);
  auto key = std::tie(backend, d, opType, opset);
  auto it = std::upper_bound(defs_.begin(), defs_.end(), key,
                             [](const auto& k, const KernelDef& def) { return k < defKey(def); });
  if (it == defs_.begin()) return nullptr;
  --it;
  if (it->backend != backend || it->domain != d || it->opType != opType || it->sinceVersion > opset) return nullptr;
  return &*it;
}

std::vector<std::string> KernelRegistry::opTypes(const std::string& backend, const std::string& domain) const {
  std::string d = canonicalDomain(domain);
  std::vector<std::string> out;
  for (const KernelDef& def : defs_) {
    if (def.backend == backend && def.domain == d && (out.empty() || out.back() != def.opType)) {
      out.push_back(def.opType);
    }
  }
  return out;
}

}  // namespace kiln
