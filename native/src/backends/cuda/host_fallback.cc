#include "backends/cuda/host_fallback.h"

#include <cstdint>

#include "backends/backend.h"
#include "backends/cuda/cuda_common.h"
#include "core/error.h"

namespace kiln::cuda {
namespace {

bool hasSubgraph(const Node& node) {
  for (const auto& [name, attr] : node.attrs) {
    if (attr.kind == Attribute::Kind::Graph || attr.kind == Attribute::Kind::Graphs) return true;
  }
  return false;
}

class HostFallbackKernel final : public Kernel {
 public:
  HostFallbackKernel(const KernelCreateInfo& info, std::unique_ptr<Kernel> cpu)
      : cpu_(std::move(cpu)) {
    for (const Tensor* c : info.constantInputs) hostInput_.push_back(c != nullptr);
  }

  // Host scratch is allocated in run(): the device arena has nothing to give a host kernel.
  size_t workspaceBytes(const KernelContext& ctx) const override {
    (void)ctx;
    return 0;
  }

  void run(KernelContext& ctx) const override {
    cudaStream_t stream = exec(ctx).stream;
    // Inputs: graph constants are host tensors already (the context keeps them on the host);
    // activations are copied down once the layers that produce them have finished.
    std::vector<Tensor> hostInputs(ctx.inputs.size());
    std::vector<const Tensor*> in(ctx.inputs.size(), nullptr);
    for (size_t i = 0; i < ctx.inputs.size(); ++i) {
      const Tensor* t = ctx.inputs[i];
      if (t == nullptr) continue;
      if (i < hostInput_.size() && hostInput_[i]) {
        in[i] = t;
        continue;
      }
      hostInputs[i] = Tensor::allocate(t->dtype, t->shape);
      if (t->byteSize() > 0)
        KILN_CUDA_CHECK(cudaMemcpyAsync(hostInputs[i].data, t->data, t->byteSize(), cudaMemcpyDeviceToHost, stream));
      in[i] = &hostInputs[i];
    }
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::vector<Tensor> hostOutputs(ctx.outputs.size());
    std::vector<Tensor*> out(ctx.outputs.size(), nullptr);
    for (size_t j = 0; j < ctx.outputs.size(); ++j) {
      if (ctx.outputs[j] == nullptr) continue;
      hostOutputs[j] = Tensor::allocate(ctx.outputs[j]->dtype, ctx.outputs[j]->shape);
      out[j] = &hostOutputs[j];
    }
    KernelContext host{ctx.node, in, out};
    Tensor scratch;
    const size_t scratchBytes = cpu_->workspaceBytes(host);
    if (scratchBytes > 0) {
      scratch = Tensor::allocate(DType::UInt8, {static_cast<int64_t>(scratchBytes + 64)});
      uintptr_t at = (reinterpret_cast<uintptr_t>(scratch.data) + 63) & ~uintptr_t(63);
      host.workspace = reinterpret_cast<void*>(at);
      host.workspaceSize = scratchBytes;
    }
    cpu_->run(host);
    for (size_t j = 0; j < ctx.outputs.size(); ++j) {
      Tensor* dst = ctx.outputs[j];
      if (dst == nullptr) continue;
      const Tensor& src = hostOutputs[j];
      KILN_CHECK(src.dtype == dst->dtype && src.shape == dst->shape, Internal,
                 "host layer '" + ctx.node.name + "' produced " + shapeToString(src.shape) + " for output " +
                     std::to_string(j) + ", planned " + shapeToString(dst->shape));
      if (src.byteSize() > 0)
        KILN_CUDA_CHECK(cudaMemcpyAsync(dst->data, src.data, src.byteSize(), cudaMemcpyHostToDevice, stream));
    }
    // The host buffers die with this call: the copies must be done before it returns.
    KILN_CUDA_CHECK(cudaStreamSynchronize(stream));
  }

  std::string name() const override { return "host." + cpu_->name(); }

 private:
  std::unique_ptr<Kernel> cpu_;
  std::vector<char> hostInput_;
};

}  // namespace

bool hostFallbackSupports(const Node& node, int64_t opset) {
  if (hasSubgraph(node)) return false;
  return KernelRegistry::instance().find("cpu", node.domain, node.opType, opset) != nullptr;
}

std::unique_ptr<Kernel> createHostFallback(const KernelCreateInfo& info, const std::string& why) {
  const Node& node = info.node;
  auto refuse = [&](const std::string& hostWhy) -> std::unique_ptr<Kernel> {
    fail(ErrorCode::UnsupportedOp, why + "; it cannot run on the host either: " + hostWhy);
  };
  if (hasSubgraph(node)) return refuse("a layer with a subgraph needs the host executor");
  for (DType t : info.inputTypes) {
    if (t == DType::String) return refuse("string tensors have no device representation");
  }
  for (DType t : info.outputTypes) {
    if (t == DType::String) return refuse("string tensors have no device representation");
  }
  std::unique_ptr<Kernel> cpu;
  try {
    cpu = createBackend("cpu")->compile(info);
  } catch (const KilnError& e) {
    if (e.code() != ErrorCode::UnsupportedOp) throw;
    return refuse(e.what());
  }
  return std::make_unique<HostFallbackKernel>(info, std::move(cpu));
}

bool isHostKernel(const Kernel& kernel) { return dynamic_cast<const HostFallbackKernel*>(&kernel) != nullptr; }

}  // namespace kiln::cuda
