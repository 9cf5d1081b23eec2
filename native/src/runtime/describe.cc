// Engine::describeJson: everything `kiln inspect` shows about an engine, as one JSON document.
#include <cstdio>
#include <sstream>

#include "plan/profiles.h"
#include "runtime/build_info.h"
#include "runtime/engine_impl.h"

namespace kiln {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string shapeJson(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

void tensorInfos(std::ostringstream& out, const std::vector<TensorInfo>& infos) {
  out << "[";
  for (size_t i = 0; i < infos.size(); ++i) {
    const TensorInfo& t = infos[i];
    out << (i ? "," : "") << "{\"name\":" << quote(t.name) << ",\"dtype\":" << quote(dtypeName(t.dtype))
        << ",\"shape\":";
    // Dims as numbers, symbols as strings; null when the rank is unknown (as the addon does).
    if (!t.shape.hasRank) {
      out << "null}";
      continue;
    }
    out << "[";
    for (size_t d = 0; d < t.shape.rank(); ++d) {
      const Dim& dim = t.shape.dims[d];
      out << (d ? "," : "") << (dim.isKnown() ? std::to_string(dim.value) : quote(dim.symbol.empty() ? "?" : dim.symbol));
    }
    out << "]}";
  }
  out << "]";
}

}  // namespace

std::string EngineImpl::describeJson() const {
  const EnginePlan& p = plan_;
  const Graph& g = *p.graph;
  std::ostringstream out;
  out << "{\"format\":{\"magic\":\"KILNENG1\",\"version\":" << p.identity.formatVersion << "}";
  out << ",\"builderVersion\":" << quote(p.identity.builderVersion);
  out << ",\"runtimeVersion\":" << quote(buildFlags().version);
  out << ",\"backend\":" << quote(p.identity.backend) << ",\"target\":" << quote(p.identity.target);
  out << ",\"libraryVersions\":" << quote(p.identity.libraryVersions);
  out << ",\"precision\":" << quote(precisionName(p.identity.precision));
  out << ",\"inputs\":";
  tensorInfos(out, inputs_);
  out << ",\"outputs\":";
  tensorInfos(out, outputs_);
  out << ",\"profiles\":[";
  for (size_t i = 0; i < p.profiles.size(); ++i) {
    const Profile& pr = p.profiles[i];
    out << (i ? "," : "") << "{\"spec\":" << quote(formatProfile(pr)) << ",\"inputs\":{";
    size_t k = 0;
    for (const auto& [name, mn] : pr.min) {
      auto opt = pr.opt.find(name);
      auto mx = pr.max.find(name);
      out << (k++ ? "," : "") << quote(name) << ":{\"min\":" << shapeJson(mn)
          << ",\"opt\":" << shapeJson(opt == pr.opt.end() ? mn : opt->second)
          << ",\"max\":" << shapeJson(mx == pr.max.end() ? mn : mx->second) << "}";
    }
    out << "}}";
  }
  out << "]";
  out << ",\"opsets\":{";
  size_t k = 0;
  for (const auto& [domain, version] : g.opsets) out << (k++ ? "," : "") << quote(domain) << ":" << version;
  out << "}";

  const EngineMemoryPlan& mem = p.memory;
  size_t planned = 0;
  for (const EngineSlot& s : mem.slots) planned += s.offset >= 0 || s.aliasOf != kNoValue;
  out << ",\"memory\":{\"deviceMemoryBytes\":" << mem.arenaBytes << ",\"weightBytes\":" << p.weightBytes
      << ",\"plannedTensors\":" << planned << ",\"tensors\":[";
  k = 0;
  for (size_t v = 0; v < mem.slots.size(); ++v) {
    const EngineSlot& s = mem.slots[v];
    if (s.offset < 0 && s.aliasOf == kNoValue) continue;
    out << (k++ ? "," : "") << "{\"name\":" << quote(g.values[v].name) << ",\"offset\":" << s.offset
        << ",\"bytes\":" << s.bytes;
    if (s.aliasOf != kNoValue) out << ",\"aliasOf\":" << quote(g.values[s.aliasOf].name);
    out << "}";
  }
  out << "]}";

  // One entry per node, with the build-time measurement when the report has it.
  std::map<std::string, const LayerReport*> measured;
  for (const LayerReport& l : p.report.layers) measured[l.name] = &l;
  out << ",\"layers\":[";
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const Node& node = g.nodes[n];
    out << (n ? "," : "") << "{\"name\":" << quote(node.name) << ",\"op\":" << quote(qualifiedOp(node))
        << ",\"kernel\":" << quote(nodes_[n].kernel->name()) << ",\"inputs\":[";
    for (size_t i = 0; i < node.inputs.size(); ++i)
      out << (i ? "," : "") << quote(node.inputs[i] == kNoValue ? "" : g.values[node.inputs[i]].name);
    out << "],\"outputs\":[";
    for (size_t i = 0; i < node.outputs.size(); ++i)
      out << (i ? "," : "") << quote(node.outputs[i] == kNoValue ? "" : g.values[node.outputs[i]].name);
    out << "]";
    auto it = measured.find(node.name);
    if (it != measured.end())
      out << ",\"outputShape\":" << quote(it->second->outputShape) << ",\"timeMs\":" << number(it->second->timeMs);
    if (n < mem.workspaces.size() && mem.workspaces[n].offset >= 0)
      out << ",\"workspaceBytes\":" << mem.workspaces[n].bytes;
    out << "}";
  }
  out << "]";

  const BuildReport& r = p.report;
  out << ",\"build\":{\"nodesBefore\":" << r.nodesBefore << ",\"nodesAfter\":" << r.nodesAfter << ",\"fusions\":{";
  k = 0;
  for (const auto& [name, count] : r.fusions) out << (k++ ? "," : "") << quote(name) << ":" << count;
  out << "},\"warnings\":[";
  for (size_t i = 0; i < r.warnings.size(); ++i) out << (i ? "," : "") << quote(r.warnings[i]);
  out << "]}}";
  return out.str();
}

}  // namespace kiln
