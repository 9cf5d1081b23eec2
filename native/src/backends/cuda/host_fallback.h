// Layers the CUDA backend has no kernel for run on the host: the CPU backend's kernel for the node,
// fed with its device inputs copied to host memory, its outputs copied back into the context's
// device arena. This is the one exception to the CUDA kernel contract (cuda_common.h): a host
// layer synchronizes the stream and copies, so the context replays CUDA graphs only for the runs
// of device layers between host layers. A model with one odd operator (a TopK, a CumSum) still
// builds for the GPU; the build report names the host layers (kernel "host.<cpu kernel>") and
// warns, so a user sees what is not accelerated.
#pragma once
#include <memory>
#include <string>

#include "backends/kernel.h"

namespace kiln::cuda {

// Whether the node could run on the host: the CPU backend has a kernel for it, it has no subgraph
// (If/Loop/Scan bodies need the host executor) and no string tensors (device memory holds none).
bool hostFallbackSupports(const Node& node, int64_t opset);

// The host kernel for a node the CUDA backend cannot run (`why`: the CUDA kernel's reason, kept for
// the report). Throws UnsupportedOp, naming both reasons, when the CPU backend cannot run it either.
std::unique_ptr<Kernel> createHostFallback(const KernelCreateInfo& info, const std::string& why);

// Whether a compiled kernel is a host layer.
bool isHostKernel(const Kernel& kernel);

}  // namespace kiln::cuda
