#include "plan/profiles.h"

#include <map>
#include <set>
#include <sstream>

#include "core/error.h"

namespace kiln {
namespace {

// Dims beyond this are certainly a typo (or hostile) and would overflow size arithmetic later.
constexpr int64_t kMaxProfileDim = int64_t(1) << 40;

bool isDynamic(const SymShape& shape) { return !shape.isConcrete(); }

std::string quoted(const std::string& name) { return "'" + name + "'"; }

std::string where(size_t profileIndex, const std::string& input) {
  return "profile " + std::to_string(profileIndex) + ": input " + quoted(input);
}

const Shape* lookup(const std::map<std::string, Shape>& shapes, const std::string& name) {
  auto it = shapes.find(name);
  return it == shapes.end() ? nullptr : &it->second;
}

// One range per symbol, remembered with the place it was first seen so a conflict names both.
struct SymbolRange {
  int64_t min, opt, max;
  std::string seenAt;
};

void checkInput(size_t k, const TensorInfo& info, const Shape& min, const Shape& opt, const Shape& max,
                std::map<std::string, SymbolRange>& symbols) {
  const std::string at = where(k, info.name);
  KILN_CHECK(min.size() == opt.size() && opt.size() == max.size(), InvalidArgument,
             at + " has min " + shapeToString(min) + ", opt " + shapeToString(opt) + " and max " +
                 shapeToString(max) + " of different ranks");
  if (info.shape.hasRank) {
    KILN_CHECK(min.size() == info.shape.rank(), InvalidArgument,
               at + " has rank " + std::to_string(min.size()) + " " + formatShapeRange(min, max) +
                   " but the model's input has rank " + std::to_string(info.shape.rank()) + " " +
                   info.shape.toString());
  }
  for (size_t d = 0; d < min.size(); d++) {
    const std::string dim = at + " dim " + std::to_string(d);
    KILN_CHECK(min[d] >= 0 && min[d] <= opt[d] && opt[d] <= max[d], InvalidArgument,
               dim + " needs 0 <= min <= opt <= max, got min " + std::to_string(min[d]) + ", opt " +
                   std::to_string(opt[d]) + ", max " + std::to_string(max[d]));
    KILN_CHECK(max[d] <= kMaxProfileDim, InvalidArgument, dim + " max " + std::to_string(max[d]) + " is too large");
    if (!info.shape.hasRank) continue;
    const Dim& modelDim = info.shape.dims[d];
    if (modelDim.isKnown()) {
      KILN_CHECK(min[d] == modelDim.value && max[d] == modelDim.value, InvalidArgument,
                 dim + " is fixed to " + std::to_string(modelDim.value) + " by the model " +
                     info.shape.toString() + " but the profile allows " + formatShapeRange(min, max));
      continue;
    }
    if (modelDim.symbol.empty()) continue;
    SymbolRange range{min[d], opt[d], max[d], info.name + " dim " + std::to_string(d)};
    auto [it, inserted] = symbols.emplace(modelDim.symbol, range);
    const SymbolRange& seen = it->second;
    KILN_CHECK(inserted || (seen.min == range.min && seen.opt == range.opt && seen.max == range.max),
               InvalidArgument,
               dim + " is '" + modelDim.symbol + "' with min/opt/max " + std::to_string(range.min) + "/" +
                   std::to_string(range.opt) + "/" + std::to_string(range.max) + " but " + seen.seenAt +
                   " (the same symbol) has " + std::to_string(seen.min) + "/" + std::to_string(seen.opt) +
                   "/" + std::to_string(seen.max));
  }
  try {
    (void)shapeNumel(max);
  } catch (const KilnError&) {
    fail(ErrorCode::InvalidArgument, at + " max shape " + shapeToString(max) + " is too large");
  }
}

Profile resolveOne(size_t k, const std::vector<TensorInfo>& inputs, const Profile& given) {
  std::map<std::string, const TensorInfo*> byName;
  for (const TensorInfo& info : inputs) byName.emplace(info.name, &info);
  std::string known;
  for (const TensorInfo& info : inputs) known += (known.empty() ? "" : ", ") + info.name;

  // The three maps must name the same inputs, and only model inputs.
  const std::pair<const char*, const std::map<std::string, Shape>*> parts[] = {
      {"min", &given.min}, {"opt", &given.opt}, {"max", &given.max}};
  for (auto& [label, shapes] : parts) {
    for (auto& [name, shape] : *shapes) {
      KILN_CHECK(byName.count(name), InvalidArgument,
                 "profile " + std::to_string(k) + " names " + quoted(name) +
                     ", which is not an input of the model (inputs: " + known + ")");
      for (auto& [otherLabel, other] : parts) {
        KILN_CHECK(other->count(name), InvalidArgument,
                   where(k, name) + " has a " + label + " shape but no " + otherLabel + " shape");
      }
    }
  }

  Profile out;
  std::map<std::string, SymbolRange> symbols;
  for (const TensorInfo& info : inputs) {
    const Shape* min = lookup(given.min, info.name);
    if (!min) {
      KILN_CHECK(!isDynamic(info.shape), InvalidArgument,
                 "profile " + std::to_string(k) + " does not cover dynamic input " + quoted(info.name) +
                     " " + info.shape.toString() + ": give its min, opt and max shapes");
      Shape fixed = info.shape.concrete();
      out.min[info.name] = out.opt[info.name] = out.max[info.name] = fixed;
      continue;
    }
    const Shape& opt = given.opt.at(info.name);
    const Shape& max = given.max.at(info.name);
    checkInput(k, info, *min, opt, max, symbols);
    out.min[info.name] = *min;
    out.opt[info.name] = opt;
    out.max[info.name] = max;
  }
  return out;
}

// The profile used when the caller gives none: dynamic dims pinned to 1.
Profile defaultProfile(const std::vector<TensorInfo>& inputs) {
  Profile out;
  for (const TensorInfo& info : inputs) {
    KILN_CHECK(info.shape.hasRank, InvalidArgument,
               "input " + quoted(info.name) + " has an unknown rank: give an optimization profile for it");
    Shape shape;
    for (const Dim& d : info.shape.dims) shape.push_back(d.isKnown() ? d.value : 1);
    out.min[info.name] = out.opt[info.name] = out.max[info.name] = shape;
  }
  return out;
}

bool fits(const Shape& shape, const Shape& min, const Shape& max) {
  if (shape.size() != min.size() || shape.size() != max.size()) return false;
  for (size_t d = 0; d < shape.size(); d++) {
    if (shape[d] < min[d] || shape[d] > max[d]) return false;
  }
  return true;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    parts.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return parts;
}

Shape parseShape(const std::string& text, const std::string& context) {
  std::string t = trim(text);
  if (t == "scalar") return {};
  KILN_CHECK(!t.empty(), InvalidArgument, "empty shape in profile spec " + quoted(context));
  Shape shape;
  for (const std::string& part : split(t, 'x')) {
    KILN_CHECK(!part.empty() && part.size() <= 15 && part.find_first_not_of("0123456789") == std::string::npos,
               InvalidArgument,
               "bad dimension " + quoted(part) + " in shape " + quoted(t) + " of profile spec " + quoted(context) +
                   " (expected dims like 1x3x224x224)");
    int64_t v = std::stoll(part);
    KILN_CHECK(v <= kMaxProfileDim, InvalidArgument,
               "dimension " + part + " in profile spec " + quoted(context) + " is too large");
    shape.push_back(v);
  }
  return shape;
}

std::string formatShape(const Shape& shape) {
  if (shape.empty()) return "scalar";
  std::string out;
  for (size_t d = 0; d < shape.size(); d++) out += (d ? "x" : "") + std::to_string(shape[d]);
  return out;
}

}  // namespace

std::vector<Profile> resolveProfiles(const std::vector<TensorInfo>& inputs, const std::vector<Profile>& profiles) {
  if (profiles.empty()) return {defaultProfile(inputs)};
  std::vector<Profile> out;
  for (size_t k = 0; k < profiles.size(); k++) out.push_back(resolveOne(k, inputs, profiles[k]));
  return out;
}

std::vector<Profile> resolveProfiles(const Graph& graph, const std::vector<Profile>& profiles) {
  std::vector<TensorInfo> inputs;
  for (ValueId id : graph.inputs) {
    KILN_CHECK(id >= 0 && (size_t)id < graph.values.size(), Internal, "graph input id out of range");
    const Value& v = graph.values[id];
    inputs.push_back(TensorInfo{v.name, v.dtype, v.shape});
  }
  return resolveProfiles(inputs, profiles);
}

int selectProfile(const std::vector<Profile>& profiles,
                  const std::vector<std::pair<std::string, Shape>>& inputShapes) {
  KILN_CHECK(!profiles.empty(), InvalidArgument, "the engine has no optimization profile");
  for (size_t k = 0; k < profiles.size(); k++) {
    for (auto& [name, shape] : profiles[k].min) {
      bool given = false;
      for (auto& in : inputShapes) given = given || in.first == name;
      KILN_CHECK(given, InvalidArgument, "missing input " + quoted(name));
    }
  }
  // For each profile, the first input that does not fit it.
  struct Miss {
    std::string input;
    Shape shape;
    std::vector<std::string> allowed;  // "profile 0 allows [..]"
  };
  std::vector<Miss> misses;
  for (size_t k = 0; k < profiles.size(); k++) {
    const Profile& p = profiles[k];
    bool failed = false;
    for (auto& [name, shape] : inputShapes) {
      const Shape* min = lookup(p.min, name);
      const Shape* max = lookup(p.max, name);
      if (!min || !max || fits(shape, *min, *max)) continue;
      std::string allowed = "profile " + std::to_string(k) + " allows " + formatShapeRange(*min, *max);
      for (Miss& m : misses) {
        if (m.input == name) {
          m.allowed.push_back(allowed);
          failed = true;
          break;
        }
      }
      if (!failed) {
        misses.push_back(Miss{name, shape, {allowed}});
        failed = true;
      }
      break;
    }
    if (!failed) return (int)k;
  }
  std::string message;
  for (const Miss& m : misses) {
    if (!message.empty()) message += "; ";
    message += "input " + quoted(m.input) + " has shape " + shapeToString(m.shape) + " but ";
    for (size_t i = 0; i < m.allowed.size(); i++) message += (i ? ", " : "") + m.allowed[i];
  }
  fail(ErrorCode::ShapeMismatch, message);
}

Profile parseProfile(const std::string& spec) {
  Profile profile;
  for (const std::string& rawEntry : split(spec, ';')) {
    std::string entry = trim(rawEntry);
    if (entry.empty()) continue;  // tolerate "a:1x2;" and blank separators
    size_t colon = entry.rfind(':');
    KILN_CHECK(colon != std::string::npos && colon > 0, InvalidArgument,
               "profile spec " + quoted(entry) + " should look like name:min,opt,max (e.g. input:1x3x224x224,8x3x224x224,32x3x224x224)");
    std::string name = trim(entry.substr(0, colon));
    KILN_CHECK(!name.empty(), InvalidArgument, "profile spec " + quoted(entry) + " has no input name");
    KILN_CHECK(!profile.min.count(name), InvalidArgument, "profile spec names input " + quoted(name) + " twice");
    std::vector<std::string> shapes = split(entry.substr(colon + 1), ',');
    KILN_CHECK(shapes.size() == 1 || shapes.size() == 3, InvalidArgument,
               "profile spec " + quoted(entry) + " should give one shape or three (min,opt,max), got " +
                   std::to_string(shapes.size()));
    Shape min = parseShape(shapes[0], entry);
    Shape opt = shapes.size() == 3 ? parseShape(shapes[1], entry) : min;
    Shape max = shapes.size() == 3 ? parseShape(shapes[2], entry) : min;
    profile.min[name] = min;
    profile.opt[name] = opt;
    profile.max[name] = max;
  }
  KILN_CHECK(!profile.min.empty(), InvalidArgument, "empty profile spec " + quoted(spec));
  return profile;
}

std::string formatProfile(const Profile& profile) {
  std::string out;
  for (auto& [name, min] : profile.min) {
    const Shape* opt = lookup(profile.opt, name);
    const Shape* max = lookup(profile.max, name);
    if (!out.empty()) out += ";";
    out += name + ":" + formatShape(min);
    if (opt && max && (*opt != min || *max != min)) out += "," + formatShape(*opt) + "," + formatShape(*max);
  }
  return out;
}

std::string formatShapeRange(const Shape& min, const Shape& max) {
  if (min.size() != max.size()) return shapeToString(min) + ".." + shapeToString(max);
  std::string out = "[";
  for (size_t d = 0; d < min.size(); d++) {
    if (d) out += ",";
    out += std::to_string(min[d]);
    if (max[d] != min[d]) out += ".." + std::to_string(max[d]);
  }
  return out + "]";
}

}  // namespace kiln
