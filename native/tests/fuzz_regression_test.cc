// Replays the fuzzer's regressions and its whole corpus through build and inspect: every file must
// end in a built engine or a KilnError, never a crash or another exception. Run under
// -DKILN_ASAN=ON as well, where a read past a buffer is caught even when it would not crash.
#include <dirent.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/api.h"
#include "test.h"

using namespace kiln;

namespace {

std::vector<std::string> filesIn(const std::string& dir) {
  std::vector<std::string> paths;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      if (entry->d_name[0] != '.') paths.push_back(dir + "/" + entry->d_name);
    }
    closedir(d);
  }
  return paths;
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// "" when the model builds, else the KilnError's message. Other exceptions propagate and fail.
std::string buildOrError(const std::string& bytes) {
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  try {
    inspectModel(data, bytes.size());
    BuildOptions options;
    buildEngine(data, bytes.size(), options);
    return "";
  } catch (const KilnError& e) {
    return e.what();
  }
}

}  // namespace

KILN_TEST(fuzz_regression, conv_with_one_input_names_the_missing_weight) {
  std::string bytes = readAll(std::string(KILN_FUZZ_DIR) + "/regressions/conv_single_input.onnx");
  EXPECT_TRUE(!bytes.empty());
  std::string error = buildOrError(bytes);
  EXPECT_TRUE(error.find("(Conv): input 1 is required but the node has 1 input") != std::string::npos);
}

KILN_TEST(fuzz_regression, every_regression_and_corpus_file_fails_cleanly_or_builds) {
  std::vector<std::string> files = filesIn(std::string(KILN_FUZZ_DIR) + "/regressions");
  for (const auto& path : filesIn(std::string(KILN_FUZZ_DIR) + "/corpus")) files.push_back(path);
  EXPECT_TRUE(files.size() > 100);
  for (const auto& path : files) {
    try {
      buildOrError(readAll(path));
    } catch (const std::exception& e) {
      throw kiln_test::Failure(path + ": escaped as a non-Kiln exception: " + e.what());
    }
  }
}
