#include <chrono>
#include <cstdio>
#include <cstdlib>
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
  // KILN_TEST_VERBOSE=1: each test's name before it runs (on stderr, unbuffered), so a test that
  // hangs -- a GPU kernel that never finishes -- is named when a timeout kills the run.
  const bool verbose = std::getenv("KILN_TEST_VERBOSE") != nullptr;
  int passed = 0, failed = 0;
  for (auto& test : kiln_test::registry()) {
    if (!filter.empty() && test.name.find(filter) == std::string::npos) continue;
    const auto start = std::chrono::steady_clock::now();
    if (verbose) std::fprintf(stderr, "RUN %s\n", test.name.c_str());
    try {
      test.fn();
      passed++;
      if (verbose)
        std::fprintf(stderr, "OK %s (%.1f s)\n", test.name.c_str(),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    } catch (const std::exception& e) {
      failed++;
      std::fprintf(stderr, "FAIL %s: %s\n", test.name.c_str(), e.what());
    }
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
