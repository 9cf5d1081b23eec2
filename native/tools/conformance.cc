// Conformance runner over the ONNX backend test data (node, simple, pytorch-converted,
// pytorch-operator). Each test goes through the real path — build an engine from model.onnx,
// serialize, load, create a context, run every test_data_set — and is compared with the expected
// outputs. Each test runs in a forked child so a crash or hang is one failed test, not a dead run.
//
//   kiln_conformance <root> [--suite NAME]... [--filter SUBSTR] [--known FILE] [--failures FILE]
//                    [--timeout SECONDS] [--jobs N] [--verbose]
//
// Prints one line per suite: "<suite>: N passed, M failed, K unsupported". Exits 1 when a test
// fails that is not listed in the known-failures file (lines "test_name  reason"), so a
// regression breaks CI while documented gaps do not. KILN_CONFORMANCE_BACKEND (default cpu) picks
// the backend the engines are built for; on a device backend a further line counts the passing
// tests that needed host layers (ops without a device kernel, run on the CPU). --jobs runs that
// many tests at once (results are reported in suite order all the same).
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "onnx/model_reader.h"
#include "runtime/api.h"

using namespace kiln;

namespace {

enum class Outcome { Passed = 0, Failed = 1, Unsupported = 2 };

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::InvalidArgument, "cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

bool isDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::vector<std::string> listDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = opendir(path.c_str());
  if (!dir) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

// Files named prefix_<i>.pb in index order (input_0.pb, input_1.pb, ..., input_10.pb).
std::vector<std::string> numberedFiles(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> files;
  for (int i = 0;; i++) {
    std::string path = dir + "/" + prefix + "_" + std::to_string(i) + ".pb";
    if (!exists(path)) break;
    files.push_back(path);
  }
  return files;
}

// numpy.testing.assert_allclose semantics, as the ONNX backend test runner uses: |a - b| <=
// atol + rtol * |b|, NaNs equal. fp16 gets a looser tolerance because references are computed in
// higher precision and rounded once, while kernels round intermediate results.
std::string compareTensors(const Tensor& actual, const Tensor& expected, double rtol, double atol) {
  if (actual.dtype != expected.dtype) {
    return std::string("dtype ") + dtypeName(actual.dtype) + " != expected " + dtypeName(expected.dtype);
  }
  if (actual.shape != expected.shape) {
    return "shape " + shapeToString(actual.shape) + " != expected " + shapeToString(expected.shape);
  }
  int64_t n = expected.numel();
  if (expected.dtype == DType::String) {
    for (int64_t i = 0; i < n; i++) {
      if (actual.ptr<std::string>()[i] != expected.ptr<std::string>()[i]) {
        return "string element " + std::to_string(i) + " differs";
      }
    }
    return "";
  }
  if (expected.dtype == DType::Float16 || expected.dtype == DType::BFloat16) {
    rtol = std::max(rtol, 1e-2);
    atol = std::max(atol, 1e-3);
  }
  bool exact = !isFloating(expected.dtype);
  int64_t bad = 0, firstBad = -1;
  double worst = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = actual.scalarAsDouble(i), b = expected.scalarAsDouble(i);
    bool ok;
    if (exact) {
      ok = a == b;
    } else if (std::isnan(a) || std::isnan(b)) {
      ok = std::isnan(a) && std::isnan(b);
    } else if (std::isinf(b)) {
      ok = a == b;
    } else {
      double diff = std::fabs(a - b);
      ok = diff <= atol + rtol * std::fabs(b);
      worst = std::max(worst, diff);
    }
    if (!ok) {
      if (firstBad < 0) firstBad = i;
      bad++;
    }
  }
  if (bad == 0) return "";
  std::ostringstream msg;
  msg << bad << " of " << n << " elements differ; first at " << firstBad << ": got "
      << actual.scalarAsDouble(firstBad) << ", expected " << expected.scalarAsDouble(firstBad)
      << " (max abs diff " << worst << ")";
  return msg.str();
}

// Runs one test directory in this process. Returns the outcome and writes a reason; hostLayers
// gets the number of layers that ran on the host instead of the engine's device backend.
Outcome runTest(const std::string& dir, std::string& reason, int& hostLayers) {
  try {
    std::vector<uint8_t> model = readFile(dir + "/model.onnx");
    BuildOptions options;
    options.modelDirectory = dir;
    // KILN_CONFORMANCE_BACKEND=cuda runs the suites through the CUDA backend (GPU machine).
    if (const char* backend = std::getenv("KILN_CONFORMANCE_BACKEND")) options.backend = backend;
    std::vector<std::string> dataSets;
    for (const std::string& name : listDir(dir)) {
      if (name.rfind("test_data_set_", 0) == 0 && isDirectory(dir + "/" + name)) dataSets.push_back(name);
    }
    if (dataSets.empty()) {
      reason = "no test_data_set_* folder";
      return Outcome::Failed;
    }
    // The model first: one with sequence or optional values keeps those in its test data too, which
    // is not a TensorProto and must not be read as one.
    ModelSignature signature = inspectModel(model.data(), model.size(), dir);
    if (!signature.unsupported.empty()) {
      reason = signature.unsupported.front();
      return Outcome::Unsupported;
    }
    // Build for the shapes of the first data set, as a user would with static shapes; every data
    // set of one test shares the shapes in practice, and the profile check catches those that don't.
    std::vector<std::vector<Tensor>> inputsPerSet, outputsPerSet;
    std::vector<std::vector<std::string>> inputNamesPerSet;
    for (const std::string& set : dataSets) {
      std::vector<Tensor> inputs, outputs;
      std::vector<std::string> names;
      for (const std::string& file : numberedFiles(dir + "/" + set, "input")) {
        std::vector<uint8_t> bytes = readFile(file);
        inputs.push_back(readTensorProto(bytes.data(), bytes.size()));
        names.push_back(readTensorProtoName(bytes.data(), bytes.size()));
      }
      inputNamesPerSet.push_back(std::move(names));
      for (const std::string& file : numberedFiles(dir + "/" + set, "output")) {
        std::vector<uint8_t> bytes = readFile(file);
        outputs.push_back(readTensorProto(bytes.data(), bytes.size()));
      }
      inputsPerSet.push_back(std::move(inputs));
      outputsPerSet.push_back(std::move(outputs));
    }
    // One profile fixed at the first data set's input shapes (dynamic models need one to plan).
    Profile profile;
    for (size_t i = 0; i < inputsPerSet[0].size(); i++) {
      const std::string& dataName = inputNamesPerSet[0][i];
      const TensorInfo* info = nullptr;
      for (const TensorInfo& candidate : signature.inputs) {
        if (candidate.name == dataName) info = &candidate;
      }
      if (!info && dataName.empty() && i < signature.inputs.size()) info = &signature.inputs[i];
      if (!info) continue;
      const Shape& shape = inputsPerSet[0][i].shape;
      if (!info->shape.isConcrete() || info->shape.concrete() != shape) {
        profile.min[info->name] = shape;
        profile.opt[info->name] = shape;
        profile.max[info->name] = shape;
      }
    }
    if (!profile.min.empty()) options.profiles.push_back(profile);
    BuildResult built = buildEngine(model.data(), model.size(), options);
    for (const LayerReport& layer : built.report.layers) hostLayers += layer.kernel.rfind("host.", 0) == 0 ? 1 : 0;
    std::shared_ptr<Engine> engine = Engine::load(built.engine.data(), built.engine.size());
    std::unique_ptr<ExecutionContext> context = engine->createContext();
    for (size_t s = 0; s < dataSets.size(); s++) {
      std::vector<std::pair<std::string, Tensor>> named;
      const auto& inputs = inputsPerSet[s];
      if (inputs.size() > engine->inputs().size()) {
        reason = "test provides " + std::to_string(inputs.size()) + " inputs, engine has " +
                 std::to_string(engine->inputs().size());
        return Outcome::Failed;
      }
      // Test data names its tensors after the graph inputs; older files are unnamed and positional.
      for (size_t i = 0; i < inputs.size(); i++) {
        const std::string& name = inputNamesPerSet[s][i];
        named.emplace_back(name.empty() ? engine->inputs()[i].name : name, inputs[i]);
      }
      RunResult result = context->run(named);
      const auto& expected = outputsPerSet[s];
      if (result.outputs.size() < expected.size()) {
        reason = "engine returned " + std::to_string(result.outputs.size()) + " outputs, expected " +
                 std::to_string(expected.size());
        return Outcome::Failed;
      }
      for (size_t o = 0; o < expected.size(); o++) {
        std::string diff = compareTensors(result.outputs[o].second, expected[o], 1e-3, 1e-5);
        if (!diff.empty()) {
          reason = dataSets[s] + " output '" + result.outputs[o].first + "': " + diff;
          return Outcome::Failed;
        }
      }
    }
    return Outcome::Passed;
  } catch (const KilnError& e) {
    reason = std::string(errorCodeName(e.code())) + ": " + e.what();
    return e.code() == ErrorCode::UnsupportedOp ? Outcome::Unsupported : Outcome::Failed;
  } catch (const std::exception& e) {
    reason = std::string("uncaught exception: ") + e.what();
    return Outcome::Failed;
  }
}

struct Result {
  Outcome outcome;
  std::string reason;
  int hostLayers = 0;
};

// A test running in a forked child, which reports its verdict through a pipe.
struct Running {
  pid_t pid = -1;
  int fd = -1;
  size_t index = 0;
};

Running startIsolated(const std::string& dir, int timeoutSeconds, size_t index) {
  Running job;
  job.index = index;
  int fds[2];
  if (pipe(fds) != 0) return job;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return job;
  }
  if (pid == 0) {
    close(fds[0]);
    alarm((unsigned)timeoutSeconds);  // a hang becomes SIGALRM, reported below
    std::string reason;
    int hostLayers = 0;
    Outcome outcome = runTest(dir, reason, hostLayers);
    // Short enough for the pipe's buffer: the child never blocks on a parent busy elsewhere.
    if (reason.size() > 2000) reason = reason.substr(0, 2000) + "...";
    std::string message = std::to_string((int)outcome) + "\n" + std::to_string(hostLayers) + "\n" + reason;
    ssize_t ignored = write(fds[1], message.data(), message.size());
    (void)ignored;
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  job.pid = pid;
  job.fd = fds[0];
  return job;
}

Result finishIsolated(const Running& job, int status, int timeoutSeconds) {
  std::string message;
  char buffer[4096];
  ssize_t n;
  while ((n = read(job.fd, buffer, sizeof buffer)) > 0) message.append(buffer, (size_t)n);
  close(job.fd);
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return {Outcome::Failed, sig == SIGALRM ? "timed out after " + std::to_string(timeoutSeconds) + " s"
                                            : std::string("crashed with signal ") + strsignal(sig)};
  }
  size_t first = message.find('\n');
  size_t second = first == std::string::npos ? std::string::npos : message.find('\n', first + 1);
  if (second == std::string::npos) return {Outcome::Failed, "child exited without a verdict"};
  return {(Outcome)std::stoi(message.substr(0, first)), message.substr(second + 1),
          std::stoi(message.substr(first + 1, second - first - 1))};
}

// Runs every test folder in `dirs` in its own child, at most `jobs` at a time.
std::vector<Result> runAll(const std::vector<std::string>& dirs, int timeoutSeconds, int jobs) {
  std::vector<Result> results(dirs.size(), Result{Outcome::Failed, "not run"});
  std::map<pid_t, Running> running;
  size_t next = 0;
  while (next < dirs.size() || !running.empty()) {
    while (next < dirs.size() && running.size() < static_cast<size_t>(jobs)) {
      Running job = startIsolated(dirs[next], timeoutSeconds, next);
      if (job.pid < 0) {
        results[next] = {Outcome::Failed, "could not start a child process"};
      } else {
        running[job.pid] = job;
      }
      ++next;
    }
    if (running.empty()) continue;
    int status = 0;
    pid_t done = waitpid(-1, &status, 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      break;
    }
    auto it = running.find(done);
    if (it == running.end()) continue;
    results[it->second.index] = finishIsolated(it->second, status, timeoutSeconds);
    running.erase(it);
  }
  return results;
}

std::map<std::string, std::string> readKnownFailures(const std::string& path) {
  std::map<std::string, std::string> known;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    std::string reason;
    std::getline(fields, reason);
    known[name] = reason;
  }
  return known;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: kiln_conformance <root> [--suite NAME]... [--filter SUBSTR] [--known FILE] "
                 "[--failures FILE] [--timeout SECONDS] [--jobs N] [--verbose]\n");
    return 2;
  }
  std::string root = argv[1];
  std::vector<std::string> suites;
  std::string filter, knownPath, failuresPath;
  int timeoutSeconds = 60;
  int jobs = 1;
  bool verbose = false;
  for (int i = 2; i < argc; i++) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--suite") suites.push_back(next());
    else if (arg == "--filter") filter = next();
    else if (arg == "--known") knownPath = next();
    else if (arg == "--failures") failuresPath = next();
    else if (arg == "--timeout") timeoutSeconds = std::stoi(next());
    else if (arg == "--jobs") jobs = std::max(1, std::stoi(next()));
    else if (arg == "--verbose") verbose = true;
    else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      return 2;
    }
  }
  if (suites.empty()) suites = {"node", "simple", "pytorch-converted", "pytorch-operator"};
  std::map<std::string, std::string> known = knownPath.empty() ? std::map<std::string, std::string>{}
                                                               : readKnownFailures(knownPath);
  std::ofstream failures;
  if (!failuresPath.empty()) failures.open(failuresPath);

  int unexpected = 0;
  std::vector<std::string> nowPassing, summaries;
  for (const std::string& suite : suites) {
    std::string suiteDir = root + "/" + suite;
    if (!isDirectory(suiteDir)) {
      std::fprintf(stderr, "suite folder %s not found\n", suiteDir.c_str());
      return 2;
    }
    int passed = 0, failed = 0, unsupported = 0, passedWithHostLayers = 0;
    std::vector<std::string> tests, dirs;
    for (const std::string& test : listDir(suiteDir)) {
      if (!filter.empty() && test.find(filter) == std::string::npos) continue;
      std::string dir = suiteDir + "/" + test;
      if (!exists(dir + "/model.onnx")) continue;
      tests.push_back(test);
      dirs.push_back(dir);
    }
    std::vector<Result> results = runAll(dirs, timeoutSeconds, jobs);
    for (size_t t = 0; t < tests.size(); ++t) {
      const std::string& test = tests[t];
      const Result& result = results[t];
      std::string key = suite + "/" + test;
      bool isKnown = known.count(key) != 0;
      switch (result.outcome) {
        case Outcome::Passed:
          passed++;
          if (result.hostLayers > 0) passedWithHostLayers++;
          if (isKnown) nowPassing.push_back(key);
          if (verbose && result.hostLayers > 0) std::printf("PASS %s (%d host layers)\n", key.c_str(), result.hostLayers);
          else if (verbose) std::printf("PASS %s\n", key.c_str());
          break;
        case Outcome::Unsupported:
          unsupported++;
          if (verbose) std::printf("UNSUPPORTED %s: %s\n", key.c_str(), result.reason.c_str());
          if (failures.is_open()) failures << key << "  unsupported: " << result.reason << "\n";
          break;
        case Outcome::Failed:
          failed++;
          if (!isKnown) unexpected++;
          if (verbose || !isKnown) {
            std::printf("%s %s: %s\n", isKnown ? "KNOWN-FAIL" : "FAIL", key.c_str(), result.reason.c_str());
          }
          if (failures.is_open()) failures << key << "  " << result.reason << "\n";
          break;
      }
      std::fflush(stdout);
    }
    char line[256];
    std::snprintf(line, sizeof line, "%s: %d passed, %d failed, %d unsupported", suite.c_str(), passed,
                  failed, unsupported);
    summaries.push_back(line);
    const char* backend = std::getenv("KILN_CONFORMANCE_BACKEND");
    if (backend != nullptr && std::string(backend) != "cpu") {
      std::snprintf(line, sizeof line, "%s on %s: %d of the %d passed ran every layer on the device, %d used host layers",
                    suite.c_str(), backend, passed - passedWithHostLayers, passed, passedWithHostLayers);
      summaries.push_back(line);
    }
  }
  for (const std::string& key : nowPassing) std::printf("now passing (remove from known failures): %s\n", key.c_str());
  for (const std::string& line : summaries) std::printf("%s\n", line.c_str());
  if (unexpected > 0) std::printf("%d failure(s) not listed in the known-failures file\n", unexpected);
  return unexpected > 0 ? 1 : 0;
}
