#include "plan/serialize.h"

#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "plan/serialize_graph.h"
#include "plan/serialize_hash.h"
#include "plan/serialize_io.h"

namespace kiln {
namespace {

// Fixed part of the header: magic, format version, header bytes, payload bytes, two checksums.
constexpr size_t kFixedHeaderBytes = 8 + 4 + 4 + 8 + 8 + 8;
constexpr size_t kHeaderChecksumAt = 32;
// Seed for the header checksum, so that header and payload hashes never collide by construction.
constexpr uint64_t kHeaderSeed = 0x4b494c4e48445231ULL;  // "KILNHDR1"

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// The header hash covers bytes [0, 32) and [40, headerBytes): everything but itself.
uint64_t headerChecksum(const uint8_t* data, size_t headerBytes) {
  uint64_t seed = xxhash64(data, kHeaderChecksumAt, kHeaderSeed);
  return xxhash64(data + kFixedHeaderBytes, headerBytes - kFixedHeaderBytes, seed);
}

void writeShapeMap(ByteWriter& out, const std::map<std::string, Shape>& m) {
  out.u32(static_cast<uint32_t>(m.size()));
  for (const auto& [name, shape] : m) {
    out.str(name);
    out.u32(static_cast<uint32_t>(shape.size()));
    for (int64_t d : shape) out.i64(d);
  }
}

std::map<std::string, Shape> readShapeMap(ByteReader& in) {
  std::map<std::string, Shape> m;
  uint32_t n = in.count("profile input count", 8);
  for (uint32_t i = 0; i < n; ++i) {
    std::string name = in.str("profile input name");
    uint32_t rank = in.count("profile shape rank", 8);
    Shape s(rank);
    for (uint32_t d = 0; d < rank; ++d) {
      s[d] = in.i64("profile dim");
      if (s[d] < 0) in.fail("profile dim", "negative dim in profile for '" + name + "'");
    }
    m[name] = std::move(s);
  }
  return m;
}

void writeReport(ByteWriter& out, const BuildReport& r) {
  out.u64(r.nodesBefore);
  out.u64(r.nodesAfter);
  out.u32(static_cast<uint32_t>(r.fusions.size()));
  for (const auto& [name, count] : r.fusions) {
    out.str(name);
    out.i32(count);
  }
  out.u32(static_cast<uint32_t>(r.layers.size()));
  for (const LayerReport& l : r.layers) {
    out.str(l.name);
    out.str(l.opType);
    out.str(l.kernel);
    out.str(l.outputShape);
    out.f64(l.timeMs);
  }
  out.u64(r.peakMemoryBytes);
  out.u64(r.weightBytes);
  out.u32(static_cast<uint32_t>(r.warnings.size()));
  for (const std::string& w : r.warnings) out.str(w);
}

BuildReport readReport(ByteReader& in) {
  BuildReport r;
  r.nodesBefore = in.u64("report nodes before");
  r.nodesAfter = in.u64("report nodes after");
  uint32_t numFusions = in.count("report fusion count", 8);
  for (uint32_t i = 0; i < numFusions; ++i) {
    std::string name = in.str("fusion name");
    r.fusions[name] = in.i32("fusion count");
  }
  uint32_t numLayers = in.count("report layer count", 24);
  for (uint32_t i = 0; i < numLayers; ++i) {
    LayerReport l;
    l.name = in.str("layer name");
    l.opType = in.str("layer op type");
    l.kernel = in.str("layer kernel");
    l.outputShape = in.str("layer output shape");
    l.timeMs = in.f64("layer time");
    r.layers.push_back(std::move(l));
  }
  r.peakMemoryBytes = in.u64("report peak bytes");
  r.weightBytes = in.u64("report weight bytes");
  uint32_t numWarnings = in.count("report warning count", 4);
  for (uint32_t i = 0; i < numWarnings; ++i) r.warnings.push_back(in.str("report warning"));
  return r;
}

void writeSlots(ByteWriter& out, const std::vector<EngineSlot>& slots) {
  out.u32(static_cast<uint32_t>(slots.size()));
  for (const EngineSlot& s : slots) {
    out.i64(s.offset);
    out.u64(s.bytes);
    out.i32(s.aliasOf);
  }
}

void writeMemoryPlan(ByteWriter& out, const EngineMemoryPlan& m) {
  out.u64(m.arenaBytes);
  writeSlots(out, m.slots);
  writeSlots(out, m.workspaces);
}

std::vector<EngineSlot> readSlots(ByteReader& in, const char* what, size_t expected, uint64_t arenaBytes,
                                  size_t numValues) {
  uint32_t n = in.count(what, 20);
  if (n != expected) in.fail(what, std::to_string(n) + " entries, expected " + std::to_string(expected));
  std::vector<EngineSlot> slots(n);
  for (EngineSlot& s : slots) {
    s.offset = in.i64("slot offset");
    s.bytes = in.u64("slot bytes");
    s.aliasOf = in.i32("slot alias");
    if (s.offset < -1) in.fail("slot offset", "negative offset");
    if (s.offset >= 0 && (static_cast<uint64_t>(s.offset) > arenaBytes || s.bytes > arenaBytes - s.offset))
      in.fail("slot", "slot lies outside the arena");
    if (s.aliasOf != kNoValue && (s.aliasOf < 0 || static_cast<size_t>(s.aliasOf) >= numValues))
      in.fail("slot alias", "alias of value " + std::to_string(s.aliasOf) + " out of range");
  }
  return slots;
}

EngineMemoryPlan readMemoryPlan(ByteReader& in, size_t numValues, size_t numNodes) {
  EngineMemoryPlan m;
  m.arenaBytes = in.u64("arena bytes");
  m.slots = readSlots(in, "value slots", numValues, m.arenaBytes, numValues);
  m.workspaces = readSlots(in, "workspace slots", numNodes, m.arenaBytes, numValues);
  // An alias must lead to a value within a bounded chain (no cycles).
  for (size_t v = 0; v < m.slots.size(); ++v) {
    ValueId cur = static_cast<ValueId>(v);
    size_t steps = 0;
    while (m.slots[cur].aliasOf != kNoValue) {
      cur = m.slots[cur].aliasOf;
      if (++steps > m.slots.size()) in.fail("slot alias", "alias cycle at value " + std::to_string(v));
    }
  }
  return m;
}

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};

}  // namespace

std::string EngineIdentity::describe() const {
  std::string s = target + " by builder " + builderVersion;
  if (!libraryVersions.empty()) s += " (" + libraryVersions + ")";
  return s;
}

std::vector<uint8_t> serializeEngine(const EnginePlan& plan) {
  KILN_CHECK(plan.graph != nullptr, Internal, "serializeEngine: plan has no graph");
  KILN_CHECK(plan.kernelNames.size() == plan.graph->nodes.size(), Internal,
             "serializeEngine: one kernel name per node expected");
  KILN_CHECK(plan.memory.slots.size() == plan.graph->values.size() &&
                 plan.memory.workspaces.size() == plan.graph->nodes.size(),
             Internal, "serializeEngine: one memory slot per value and one workspace per node expected");
  const EngineIdentity& id = plan.identity;

  ByteWriter out;
  out.raw(kEngineMagic, 8);
  out.u32(kEngineFormatVersion);
  out.u32(0);  // header bytes, patched below
  out.u64(0);  // payload bytes
  out.u64(0);  // payload checksum
  out.u64(0);  // header checksum
  out.str(id.builderVersion);
  out.str(id.backend);
  out.str(id.target);
  out.str(id.libraryVersions);
  out.u32(static_cast<uint32_t>(id.precision));
  const size_t headerBytes = out.size();
  uint32_t headerBytes32 = static_cast<uint32_t>(headerBytes);
  std::memcpy(out.bytes().data() + 12, &headerBytes32, 4);

  // Payload: [weights offset][weights bytes] sections... padding weights. The weights' offset is
  // relative to the payload and chosen so the blob starts 64-byte aligned in the file.
  const size_t payloadStart = out.size();
  out.u64(0);
  out.u64(0);
  uint32_t numProfiles = static_cast<uint32_t>(plan.profiles.size());
  out.u32(numProfiles);
  for (const Profile& p : plan.profiles) {
    writeShapeMap(out, p.min);
    writeShapeMap(out, p.opt);
    writeShapeMap(out, p.max);
  }
  WeightWriter weights;
  writeGraph(out, *plan.graph, weights);
  out.u32(static_cast<uint32_t>(plan.kernelNames.size()));
  for (const std::string& k : plan.kernelNames) out.str(k);
  writeMemoryPlan(out, plan.memory);
  writeReport(out, plan.report);
  out.u64(plan.weightBytes);
  size_t weightsAt = alignUp(out.size(), kWeightAlignment);
  out.zeros(weightsAt - out.size());
  weights.writeBlob(out);
  out.patchU64(payloadStart, weightsAt - payloadStart);
  out.patchU64(payloadStart + 8, weights.size());

  const size_t payloadBytes = out.size() - payloadStart;
  out.patchU64(16, payloadBytes);
  out.patchU64(24, xxhash64(out.bytes().data() + payloadStart, payloadBytes));
  out.patchU64(kHeaderChecksumAt, headerChecksum(out.bytes().data(), headerBytes));
  return std::move(out.bytes());
}

EngineIdentity readEngineIdentity(const uint8_t* data, size_t size) {
  if (size < kFixedHeaderBytes || std::memcmp(data, kEngineMagic, 8) != 0)
    fail(ErrorCode::EngineMismatch, "not a Kiln engine (missing KILNENG1 magic)");
  ByteReader in(data, size, "header");
  in.skip(8, "magic");
  EngineIdentity id;
  id.formatVersion = in.u32("format version");
  if (id.formatVersion != kEngineFormatVersion)
    fail(ErrorCode::EngineMismatch, "engine format version " + std::to_string(id.formatVersion) +
                                        " is not supported by this runtime (format version " +
                                        std::to_string(kEngineFormatVersion) + ", builder " +
                                        builderVersion() + "): rebuild the engine");
  uint32_t headerBytes = in.u32("header bytes");
  uint64_t payloadBytes = in.u64("payload bytes");
  in.u64("payload checksum");
  uint64_t storedHeaderChecksum = in.u64("header checksum");
  if (headerBytes < kFixedHeaderBytes || headerBytes > size)
    fail(ErrorCode::EngineMismatch, "corrupt engine: header size " + std::to_string(headerBytes) +
                                        " does not fit the " + std::to_string(size) + "-byte file");
  if (headerChecksum(data, headerBytes) != storedHeaderChecksum)
    fail(ErrorCode::EngineMismatch, "corrupt engine: header checksum mismatch");
  if (payloadBytes != size - headerBytes)
    fail(ErrorCode::EngineMismatch, "corrupt engine: expected " + std::to_string(headerBytes + payloadBytes) +
                                        " bytes, got " + std::to_string(size) + " (truncated or padded file)");
  ByteReader strings(data + kFixedHeaderBytes, headerBytes - kFixedHeaderBytes, "header");
  id.builderVersion = strings.str("builder version");
  id.backend = strings.str("backend");
  id.target = strings.str("target");
  id.libraryVersions = strings.str("library versions");
  uint32_t precision = strings.u32("precision");
  if (precision > static_cast<uint32_t>(Precision::Int8)) strings.fail("precision", "unknown precision");
  id.precision = static_cast<Precision>(precision);
  return id;
}

void checkEngineCompatible(const EngineIdentity& engine, const EngineIdentity& runtime) {
  bool same = engine.formatVersion == runtime.formatVersion && engine.backend == runtime.backend &&
              engine.target == runtime.target && engine.builderVersion == runtime.builderVersion &&
              engine.libraryVersions == runtime.libraryVersions;
  if (!same)
    fail(ErrorCode::EngineMismatch, "engine was built for " + engine.describe() + ", this runtime is " +
                                        runtime.describe() + ": rebuild the engine for this target");
}

EnginePlan deserializeEngine(const uint8_t* data, size_t size) {
  EnginePlan plan;
  plan.identity = readEngineIdentity(data, size);
  uint32_t headerBytes;
  std::memcpy(&headerBytes, data + 12, 4);
  uint64_t storedChecksum;
  std::memcpy(&storedChecksum, data + 24, 8);
  const uint8_t* payload = data + headerBytes;
  const size_t payloadBytes = size - headerBytes;
  if (xxhash64(payload, payloadBytes) != storedChecksum)
    fail(ErrorCode::EngineMismatch, "corrupt engine: checksum mismatch");

  ByteReader in(payload, payloadBytes, "payload");
  uint64_t weightsAt = in.u64("weights offset");
  uint64_t weightsBytes = in.u64("weights bytes");
  if (weightsAt > payloadBytes || weightsBytes > payloadBytes - weightsAt)
    in.fail("weights", "weights section lies outside the file");
  // One aligned copy of all weights, shared by every constant tensor (and so by every context).
  WeightBlob blob;
  blob.size = weightsBytes;
  size_t allocBytes = alignUp(weightsBytes == 0 ? kWeightAlignment : weightsBytes, kWeightAlignment);
  uint8_t* mem = static_cast<uint8_t*>(std::aligned_alloc(kWeightAlignment, allocBytes));
  if (mem == nullptr)
    fail(ErrorCode::OutOfMemory, "cannot allocate " + std::to_string(weightsBytes) + " bytes of engine weights");
  blob.base = std::shared_ptr<uint8_t>(mem, AlignedFree());
  if (weightsBytes > 0) std::memcpy(mem, payload + weightsAt, weightsBytes);

  ByteReader sections(payload, weightsAt, "payload");
  sections.skip(16, "weights location");
  uint32_t numProfiles = sections.count("profile count", 12);
  for (uint32_t i = 0; i < numProfiles; ++i) {
    Profile p;
    p.min = readShapeMap(sections);
    p.opt = readShapeMap(sections);
    p.max = readShapeMap(sections);
    plan.profiles.push_back(std::move(p));
  }
  plan.graph = readGraph(sections, blob, nullptr, 0);
  uint32_t numKernels = sections.count("kernel count", 4);
  if (numKernels != plan.graph->nodes.size())
    sections.fail("kernel count", std::to_string(numKernels) + " kernels for " +
                                      std::to_string(plan.graph->nodes.size()) + " nodes");
  for (uint32_t i = 0; i < numKernels; ++i) plan.kernelNames.push_back(sections.str("kernel name"));
  plan.memory = readMemoryPlan(sections, plan.graph->values.size(), plan.graph->nodes.size());
  plan.report = readReport(sections);
  plan.weightBytes = sections.u64("weight bytes");
  return plan;
}

}  // namespace kiln
