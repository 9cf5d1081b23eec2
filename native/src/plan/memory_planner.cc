#include "plan/memory_planner.h"

#include <algorithm>
#include <numeric>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace kiln {
namespace {

std::string tensorLabel(const PlannedTensor& t) { return "tensor " + std::to_string(t.id); }

size_t padTo(size_t bytes, size_t alignment) {
  size_t padded = 0;
  if (__builtin_add_overflow(bytes, alignment - 1, &padded)) {
    fail(ErrorCode::OutOfMemory, "tensor of " + std::to_string(bytes) + " bytes is too large to plan");
  }
  return padded & ~(alignment - 1);
}

bool isPowerOfTwo(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

// Checks everything that makes a request malformed (as opposed to merely unable to alias) and
// returns the index of each tensor's alias source (-1 when it asks for none).
std::vector<int32_t> validateRequest(const std::vector<PlannedTensor>& tensors, size_t alignment) {
  KILN_CHECK(isPowerOfTwo(alignment), InvalidArgument,
             "memory plan alignment must be a power of two, got " + std::to_string(alignment));
  KILN_CHECK(tensors.size() < (size_t(1) << 31), InvalidArgument, "too many tensors to plan");
  std::unordered_map<int32_t, int32_t> indexOf;
  for (size_t i = 0; i < tensors.size(); i++) {
    const PlannedTensor& t = tensors[i];
    KILN_CHECK(indexOf.emplace(t.id, (int32_t)i).second, InvalidArgument,
               "memory plan lists " + tensorLabel(t) + " twice");
    KILN_CHECK(t.firstUse >= 0 && t.lastUse >= t.firstUse, InvalidArgument,
               "memory plan: " + tensorLabel(t) + " has an invalid lifetime " +
                   std::to_string(t.firstUse) + ".." + std::to_string(t.lastUse));
  }
  std::vector<int32_t> source(tensors.size(), -1);
  for (size_t i = 0; i < tensors.size(); i++) {
    const PlannedTensor& t = tensors[i];
    switch (t.aliasKind) {
      case AliasKind::None:
        continue;
      case AliasKind::View:
      case AliasKind::InPlace:
        break;
    }
    auto it = indexOf.find(t.aliasOf);
    KILN_CHECK(it != indexOf.end(), InvalidArgument,
               "memory plan: " + tensorLabel(t) + " aliases unknown tensor " + std::to_string(t.aliasOf));
    const PlannedTensor& s = tensors[it->second];
    // The aliasing op reads its source when it runs, so the source must be written strictly
    // earlier and still be alive then. This also rules out alias cycles.
    KILN_CHECK(s.firstUse < t.firstUse && s.lastUse >= t.firstUse, InvalidArgument,
               "memory plan: " + tensorLabel(t) + " (steps " + std::to_string(t.firstUse) + ".." +
                   std::to_string(t.lastUse) + ") aliases " + tensorLabel(s) + " (steps " +
                   std::to_string(s.firstUse) + ".." + std::to_string(s.lastUse) +
                   "), which is not alive when it is produced");
    source[i] = it->second;
  }
  return source;
}

// Union-find over tensor indices: a root stands for one buffer shared by its members.
struct Groups {
  std::vector<int32_t> parent;
  std::vector<size_t> bytes;      // capacity the buffer needs (max over members)
  std::vector<int32_t> minFirst;  // buffer lifetime
  std::vector<int32_t> maxLast;
  std::vector<int32_t> maxFirst;  // latest write into the buffer so far
  std::vector<int32_t> inPlaceAt;  // latest step that overwrites the buffer in place, or -1

  explicit Groups(const std::vector<PlannedTensor>& tensors) {
    parent.resize(tensors.size());
    std::iota(parent.begin(), parent.end(), 0);
    for (const PlannedTensor& t : tensors) {
      bytes.push_back(t.bytes);
      minFirst.push_back(t.firstUse);
      maxLast.push_back(t.lastUse);
      maxFirst.push_back(t.firstUse);
      inPlaceAt.push_back(-1);
    }
  }
  int32_t find(int32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void merge(int32_t member, int32_t root) {
    root = find(root);
    member = find(member);
    parent[member] = root;
    bytes[root] = std::max(bytes[root], bytes[member]);
    minFirst[root] = std::min(minFirst[root], minFirst[member]);
    maxLast[root] = std::max(maxLast[root], maxLast[member]);
    maxFirst[root] = std::max(maxFirst[root], maxFirst[member]);
    inPlaceAt[root] = std::max(inPlaceAt[root], inPlaceAt[member]);
  }
};

struct Buffer {
  int32_t root;
  size_t size;  // padded
  int32_t first, last;
  size_t offset = 0;
};

}  // namespace

MemoryPlan planMemory(const std::vector<PlannedTensor>& tensors, const MemoryPlanOptions& options) {
  std::vector<int32_t> source = validateRequest(tensors, options.alignment);
  MemoryPlan plan;
  plan.alignment = options.alignment;
  plan.offsets.assign(tensors.size(), 0);
  plan.sharesWith.assign(tensors.size(), -1);

  if (!options.enabled) {
    size_t offset = 0;
    for (size_t i = 0; i < tensors.size(); i++) {
      plan.offsets[i] = offset;
      KILN_CHECK(!__builtin_add_overflow(offset, padTo(tensors[i].bytes, options.alignment), &offset),
                 OutOfMemory, "activation memory does not fit in the address space");
    }
    plan.peakBytes = offset;
    return plan;
  }

  // Decide aliases in execution order, so that when an in-place write is considered every earlier
  // name of the buffer is already known.
  Groups groups(tensors);
  std::vector<int32_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return tensors[a].firstUse < tensors[b].firstUse; });
  for (int32_t i : order) {
    if (source[i] < 0) continue;
    const PlannedTensor& t = tensors[i];
    const PlannedTensor& s = tensors[source[i]];
    int32_t root = groups.find(source[i]);
    bool grant = false;
    switch (t.aliasKind) {
      case AliasKind::None:
        break;
      case AliasKind::View:
        // Nobody writes a view or its source after they are produced: sharing only stretches the
        // buffer's lifetime to the last reader of either name. The one exception is a buffer that
        // another output of this very step overwrites in place.
        grant = t.bytes <= s.bytes && groups.inPlaceAt[root] != t.firstUse;
        break;
      case AliasKind::InPlace:
        // Overwriting is safe only if no name of the buffer is read after this step, and no
        // other output of this same step already writes into it. A larger output cannot be
        // computed in place (a broadcasting op would overwrite inputs it still needs).
        grant = t.bytes <= s.bytes && groups.maxLast[root] <= t.firstUse &&
                groups.maxFirst[root] < t.firstUse;
        break;
    }
    if (!grant) continue;
    if (t.aliasKind == AliasKind::InPlace) groups.inPlaceAt[root] = t.firstUse;
    groups.merge(i, root);
    plan.sharesWith[i] = source[i];
  }

  std::vector<Buffer> buffers;
  for (int32_t i = 0; i < (int32_t)tensors.size(); i++) {
    if (groups.find(i) != i) continue;
    buffers.push_back({i, padTo(groups.bytes[i], options.alignment), groups.minFirst[i], groups.maxLast[i]});
  }
  // Largest first; ties by start time then index, so the plan is deterministic.
  std::sort(buffers.begin(), buffers.end(), [](const Buffer& a, const Buffer& b) {
    if (a.size != b.size) return a.size > b.size;
    if (a.first != b.first) return a.first < b.first;
    return a.root < b.root;
  });

  std::vector<const Buffer*> placed;  // sorted by offset
  std::vector<const Buffer*> overlapping;
  size_t peak = 0;
  for (Buffer& buf : buffers) {
    if (buf.size == 0) continue;  // takes no space: offset 0 is as good as any
    overlapping.clear();
    for (const Buffer* p : placed) {
      if (p->first <= buf.last && buf.first <= p->last) overlapping.push_back(p);
    }
    // Best fit: the smallest gap between time-overlapping buffers that holds this one; else the
    // end of the highest of them.
    size_t cursor = 0, bestOffset = 0, bestGap = SIZE_MAX;
    bool found = false;
    for (const Buffer* p : overlapping) {
      if (p->offset > cursor) {
        size_t gap = p->offset - cursor;
        if (gap >= buf.size && gap < bestGap) {
          bestGap = gap;
          bestOffset = cursor;
          found = true;
        }
      }
      cursor = std::max(cursor, p->offset + p->size);
    }
    buf.offset = found ? bestOffset : cursor;
    size_t end = 0;
    KILN_CHECK(!__builtin_add_overflow(buf.offset, buf.size, &end), OutOfMemory,
               "activation memory does not fit in the address space");
    peak = std::max(peak, end);
    auto pos = std::lower_bound(placed.begin(), placed.end(), &buf,
                                [](const Buffer* a, const Buffer* b) { return a->offset < b->offset; });
    placed.insert(pos, &buf);
  }
  plan.peakBytes = peak;

  std::vector<size_t> rootOffset(tensors.size(), 0);
  for (const Buffer& buf : buffers) rootOffset[buf.root] = buf.offset;
  for (int32_t i = 0; i < (int32_t)tensors.size(); i++) plan.offsets[i] = rootOffset[groups.find(i)];
  return plan;
}

void verifyMemoryPlan(const std::vector<PlannedTensor>& tensors, const MemoryPlan& plan) {
  auto bad = [](const std::string& what) { fail(ErrorCode::Internal, "memory plan is invalid: " + what); };
  if (plan.offsets.size() != tensors.size() || plan.sharesWith.size() != tensors.size()) {
    bad("it covers " + std::to_string(plan.offsets.size()) + " tensors, expected " +
        std::to_string(tensors.size()));
  }
  std::vector<int32_t> source = validateRequest(tensors, plan.alignment);
  const size_t n = tensors.size();
  for (size_t i = 0; i < n; i++) {
    const PlannedTensor& t = tensors[i];
    if (plan.offsets[i] % plan.alignment != 0) bad(tensorLabel(t) + " is misaligned");
    size_t end = 0;
    if (__builtin_add_overflow(plan.offsets[i], t.bytes, &end) || end > plan.peakBytes) {
      bad(tensorLabel(t) + " ends past the arena");
    }
    int32_t s = plan.sharesWith[i];
    if (s == -1) continue;
    if (s != source[i]) bad(tensorLabel(t) + " shares a buffer it did not ask for");
    if (plan.offsets[i] != plan.offsets[s]) bad(tensorLabel(t) + " does not sit at its alias's offset");
    if (t.bytes > tensors[s].bytes) bad(tensorLabel(t) + " is larger than the buffer it reuses");
  }

  // Buffers: tensors connected by granted aliases.
  std::vector<int32_t> root(n);
  for (size_t i = 0; i < n; i++) {
    int32_t r = (int32_t)i;
    for (size_t hops = 0; plan.sharesWith[r] != -1; hops++) {
      if (hops > n) bad("alias chain of " + tensorLabel(tensors[i]) + " has a cycle");
      r = plan.sharesWith[r];
    }
    root[i] = r;
  }
  // An in-place write at step s is legal only if every other name of the buffer written before s
  // is dead after s, and nothing else writes the buffer at s.
  std::vector<std::vector<int32_t>> members(n);
  for (size_t i = 0; i < n; i++) members[root[i]].push_back((int32_t)i);
  for (size_t i = 0; i < n; i++) {
    if (plan.sharesWith[i] == -1 || tensors[i].aliasKind != AliasKind::InPlace) continue;
    for (int32_t j : members[root[i]]) {
      if ((size_t)j == i) continue;
      if (tensors[j].firstUse == tensors[i].firstUse ||
          (tensors[j].firstUse < tensors[i].firstUse && tensors[j].lastUse > tensors[i].firstUse)) {
        bad(tensorLabel(tensors[i]) + " overwrites " + tensorLabel(tensors[j]) + " while it is alive");
      }
    }
  }
  // Distinct buffers alive at the same time must not overlap. Sweep in order of first use, keeping
  // the tensors still alive, so the work is proportional to the pairs that coexist in time.
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return tensors[a].firstUse < tensors[b].firstUse; });
  std::vector<int32_t> alive;
  for (int32_t i : order) {
    const PlannedTensor& a = tensors[i];
    alive.erase(std::remove_if(alive.begin(), alive.end(), [&](int32_t j) { return tensors[j].lastUse < a.firstUse; }),
                alive.end());
    if (a.bytes == 0) continue;
    for (int32_t j : alive) {
      const PlannedTensor& b = tensors[j];
      if (root[i] == root[j]) continue;
      if (plan.offsets[i] < plan.offsets[j] + b.bytes && plan.offsets[j] < plan.offsets[i] + a.bytes) {
        bad(tensorLabel(b) + " and " + tensorLabel(a) + " overlap in memory while both are alive");
      }
    }
    alive.push_back(i);
  }
}

std::string describeMemoryPlan(const std::vector<PlannedTensor>& tensors, const MemoryPlan& plan) {
  std::ostringstream out;
  out << "arena " << plan.peakBytes << " bytes, " << tensors.size() << " tensors\n";
  for (size_t i = 0; i < tensors.size() && i < plan.offsets.size(); i++) {
    const PlannedTensor& t = tensors[i];
    out << "id " << t.id << ": [" << plan.offsets[i] << ", " << plan.offsets[i] + t.bytes << ") steps "
        << t.firstUse << ".." << t.lastUse;
    if (i < plan.sharesWith.size() && plan.sharesWith[i] >= 0) {
      out << (t.aliasKind == AliasKind::InPlace ? " (in place of " : " (view of ")
          << tensors[plan.sharesWith[i]].id << ")";
    }
    out << "\n";
  }
  return out.str();
}

}  // namespace kiln
