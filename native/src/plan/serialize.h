// The engine file: everything a runtime needs to execute a built model without the ONNX file or the
// optimizer. Layout (all integers little-endian):
//
//   header   "KILNENG1" | u32 formatVersion | u32 headerBytes | u64 payloadBytes |
//            u64 payloadChecksum | u64 headerChecksum | identity strings (builder version, backend,
//            target, library versions, precision)
//   payload  profiles | optimized graph (values with dtypes and symbolic shapes, nodes with
//            attributes, tensors and subgraphs, inputs, outputs, opsets) | kernel per node |
//            memory plan | build report | weights (each tensor 64-byte aligned in the file)
//
// payloadChecksum is XXH64 over the payload; headerChecksum covers the header itself, so a flipped
// byte anywhere is reported as "checksum mismatch" instead of being trusted. Reading is bounds-checked
// throughout: hostile or truncated bytes yield KilnError(EngineMismatch), never a crash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "graph/ir.h"
#include "runtime/api.h"

namespace kiln {

inline constexpr char kEngineMagic[8] = {'K', 'I', 'L', 'N', 'E', 'N', 'G', '1'};
// Bumped on any incompatible change of the layout below; readers accept only their own version.
inline constexpr uint32_t kEngineFormatVersion = 1;
// Weights are aligned to this many bytes in the file and in memory (SIMD loads, future mmap).
inline constexpr uint64_t kWeightAlignment = 64;

// Who built the engine and for what. A runtime loads an engine only when all of these match it.
struct EngineIdentity {
  uint32_t formatVersion = kEngineFormatVersion;
  std::string builderVersion;
  std::string backend;          // "cpu", "cuda"
  std::string target;           // "cpu-x86_64-avx2", "cuda-sm90"
  std::string libraryVersions;  // "" on CPU; "cuda=13.0;cublas=13.1" on CUDA
  Precision precision = Precision::Fp32;

  // "cpu-x86_64-avx2 by builder 0.1.0" (used on both sides of a mismatch message).
  std::string describe() const;
};

// Where one top-level value lives in a context's activation arena.
struct EngineSlot {
  int64_t offset = -1;         // byte offset in the arena; -1: not planned (heap at run time)
  uint64_t bytes = 0;          // capacity of the slot (the value's size at the largest shapes)
  ValueId aliasOf = kNoValue;  // a Reshape-like view of this value: shares its bytes, no copy
};

// The static memory plan of one execution context, computed at the max shapes of every profile.
// Graph inputs, graph outputs and constants are never in the arena (the runtime owns them).
struct EngineMemoryPlan {
  uint64_t arenaBytes = 0;             // exact bytes of one context's arena (activations + scratch)
  std::vector<EngineSlot> slots;       // indexed by ValueId of the top-level graph
  std::vector<EngineSlot> workspaces;  // indexed by node: the kernel's scratch (aliasOf unused)
};

struct EnginePlan {
  EngineIdentity identity;
  std::vector<Profile> profiles;
  std::shared_ptr<Graph> graph;          // optimized; constants point at the weights blob
  std::vector<std::string> kernelNames;  // per node of graph, the tactic chosen at build time
  EngineMemoryPlan memory;
  BuildReport report;                    // as produced by the build (for inspect/describe)
  uint64_t weightBytes = 0;              // bytes of tensor data held by the graph
};

// Serializes the plan. Every constant tensor in the graph (initializers, attribute tensors, tensors
// of subgraphs) is written to the weights section.
std::vector<uint8_t> serializeEngine(const EnginePlan& plan);

// Reads and validates the header only: magic, format version, header checksum, sizes.
// Throws KilnError(EngineMismatch) when the bytes are not a readable engine of this format.
EngineIdentity readEngineIdentity(const uint8_t* data, size_t size);

// Throws KilnError(EngineMismatch) naming both sides when `engine` was built for another target,
// backend, library set or builder version than `runtime`.
void checkEngineCompatible(const EngineIdentity& engine, const EngineIdentity& runtime);

// Reads the whole engine after verifying the payload checksum. The weights are copied once into a
// single 64-byte aligned allocation shared by every constant tensor of the returned graph.
EnginePlan deserializeEngine(const uint8_t* data, size_t size);

}  // namespace kiln
