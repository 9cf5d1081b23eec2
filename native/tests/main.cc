#include <cstdio>
#include <exception>

#include "test.h"

namespace kiln_test {
std::vector<TestCase>& registry() {
  static std::vector<TestCase> tests;
  return tests;
}
}  // namespace kiln_test

int main(int argc, char** argv) {
  std::string filter = argc > 1 ? argv[1] : "";
  int passed = 0, failed = 0;
  for (auto& test : kiln_test::registry()) {
    if (!filter.empty() && test.name.find(filter) == std::string::npos) continue;
    try {
      test.fn();
      passed++;
    } catch (const std::exception& e) {
      failed++;
      std::fprintf(stderr, "FAIL %s: %s\n", test.name.c_str(), e.what());
    }
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
