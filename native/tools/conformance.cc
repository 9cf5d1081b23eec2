// Conformance runner over the ONNX backend test data (node, simple, pytorch-converted,
// pytorch-operator). Each test goes through the real path — build an engine from model.onnx,
// serialize, load, create a context, run every test_data_set — and is compared with the expected
// outputs. Tests run in forked worker children that live for many tests (a device backend
// initializes once per worker, not once per test); a test that crashes or hangs its worker is one
// failed test and the worker is replaced, so the run goes on.
//
//   kiln_conformance <root> [--suite NAME]... [--filter SUBSTR] [--known FILE] [--failures FILE]
//                    [--timeout SECONDS] [--time-limit SECONDS] [--jobs N] [--verbose]
//
// Prints one line per suite: "<suite>: N passed, M failed, K unsupported". Exits 1 when a test
// fails that is not listed in the known-failures file (lines "test_name  reason"), so a
// regression breaks CI while documented gaps do not. KILN_CONFORMANCE_BACKEND (default cpu) picks
// the backend the engines are built for; on a device backend a further line counts the passing
// tests that needed host layers (ops without a device kernel, run on the CPU). --jobs runs that
// many workers at once. Output streams: each test's line (and --failures line) is printed as soon
// as it and every test before it in suite order are done, each suite's summary as soon as the
// suite is, and all summaries again at the end. --timeout limits one test (default 60 s);
// --time-limit limits the whole run: when it runs out, running tests are killed ("not run: time
// limit"), the rest are not started, the summaries so far and a count of the tests not run are
// printed, and the exit status is 1.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
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

using Clock = std::chrono::steady_clock;

bool writeAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool readAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// A worker's verdict on the pipe: this header, then reasonSize bytes of reason. With the reason
// capped at ~2000 bytes a frame is under PIPE_BUF, so it is written at once and never blocks a
// worker on a parent busy elsewhere.
struct Frame {
  uint32_t index;
  int32_t outcome;
  int32_t hostLayers;
  uint32_t reasonSize;
};

// A worker child: reads test indices (uint32) from taskFd, runs each in-process under an alarm of
// timeoutSeconds, answers with a Frame on resultFd. Exits when the task pipe closes (the parent is
// done with it, or gone). Never returns through main.
[[noreturn]] void workerMain(const std::vector<std::string>& dirs, int taskFd, int resultFd, int timeoutSeconds) {
  for (;;) {
    uint32_t index = 0;
    if (!readAll(taskFd, &index, sizeof index) || index >= dirs.size()) _exit(0);
    alarm(static_cast<unsigned>(timeoutSeconds));  // a hang becomes SIGALRM, reported by the parent
    std::string reason;
    int hostLayers = 0;
    Outcome outcome = runTest(dirs[index], reason, hostLayers);
    alarm(0);
    if (reason.size() > 2000) reason = reason.substr(0, 2000) + "...";
    Frame frame{index, static_cast<int32_t>(outcome), hostLayers, static_cast<uint32_t>(reason.size())};
    std::string message(reinterpret_cast<const char*>(&frame), sizeof frame);
    message += reason;
    if (!writeAll(resultFd, message.data(), message.size())) _exit(0);
  }
}

// One persistent worker as the parent sees it.
struct Worker {
  pid_t pid = -1;
  int taskFd = -1;    // the parent writes test indices here
  int resultFd = -1;  // and reads Frames here
  long current = -1;  // the test it is running, -1 when idle
  Clock::time_point started;
  std::string pending;  // bytes of a Frame not complete yet
};

// Runs the test folders in `dirs` on at most `jobs` long-lived forked workers (each initializes
// the backend once, not once per test), calling report(index, result) as each verdict comes in, in
// any order. A test that crashes or hangs its worker is reported failed and the worker replaced,
// so it costs that one test. So is a worker after a failed test: whatever state a failure left
// (a sticky device error, a half-torn context) cannot fail the tests after it. Stops handing out
// tests at `deadline` (when set): running tests are killed and reported "not run: time limit".
// Returns how many tests were handed out; each of them was reported, the rest were not run. The
// parent itself never runs a test, so it never touches the device and every fork is clean.
size_t runAll(const std::vector<std::string>& dirs, int timeoutSeconds, int jobs, bool hasDeadline,
              Clock::time_point deadline, const std::function<void(size_t, Result)>& report) {
  std::signal(SIGPIPE, SIG_IGN);  // a write to a worker that just died fails instead of killing us
  const pid_t parent = getpid();
  std::vector<Worker> workers(std::min(dirs.size(), static_cast<size_t>(std::max(1, jobs))));
  size_t next = 0;

  auto spawn = [&](Worker& slot) -> bool {
    int task[2], result[2];
    if (pipe(task) != 0) return false;
    if (pipe(result) != 0) {
      close(task[0]);
      close(task[1]);
      return false;
    }
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
      close(task[0]);
      close(task[1]);
      close(result[0]);
      close(result[1]);
      return false;
    }
    if (pid == 0) {
#ifdef __linux__
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a killed runner takes its workers with it
      if (getppid() != parent) _exit(0);
#endif
      close(task[1]);
      close(result[0]);
      // The other workers' pipe ends: held here they would keep a worker from seeing its task pipe
      // close, and the parent from seeing a dead worker's result pipe end.
      for (const Worker& other : workers) {
        if (other.taskFd >= 0) close(other.taskFd);
        if (other.resultFd >= 0) close(other.resultFd);
      }
      workerMain(dirs, task[0], result[1], timeoutSeconds);
    }
    close(task[0]);
    close(result[1]);
    slot = Worker{};
    slot.pid = pid;
    slot.taskFd = task[1];
    slot.resultFd = result[0];
    return true;
  };

  // Reports every complete Frame in w.pending that answers w's current test. Returns whether the
  // verdict reported was a failure.
  auto takeFrames = [&](Worker& w) -> bool {
    bool failed = false;
    while (w.pending.size() >= sizeof(Frame)) {
      Frame frame;
      std::memcpy(&frame, w.pending.data(), sizeof frame);
      if (w.pending.size() < sizeof frame + frame.reasonSize) break;
      std::string reason = w.pending.substr(sizeof frame, frame.reasonSize);
      w.pending.erase(0, sizeof frame + frame.reasonSize);
      if (w.current < 0 || frame.index != static_cast<uint32_t>(w.current)) continue;
      Outcome outcome = static_cast<Outcome>(frame.outcome);
      report(frame.index, Result{outcome, std::move(reason), frame.hostLayers});
      w.current = -1;
      failed = outcome == Outcome::Failed;
    }
    return failed;
  };

  // Ends a worker (closing its task pipe lets an idle one exit; `kill` ends a busy one), collects
  // its status and any verdict still in its pipe. A test it was running without a verdict is
  // reported failed: `cause` when given, else how the worker died.
  auto reap = [&](Worker& w, bool killIt, const std::string& cause) {
    close(w.taskFd);
    if (killIt) kill(w.pid, SIGKILL);
    int status = 0;
    while (waitpid(w.pid, &status, 0) < 0 && errno == EINTR) {
    }
    char buffer[4096];
    for (;;) {
      ssize_t n = read(w.resultFd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      w.pending.append(buffer, static_cast<size_t>(n));
    }
    close(w.resultFd);
    takeFrames(w);
    if (w.current >= 0) {
      std::string reason = cause;
      if (reason.empty() && WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        reason = sig == SIGALRM ? "timed out after " + std::to_string(timeoutSeconds) + " s"
                                : std::string("crashed with signal ") + strsignal(sig);
      } else if (reason.empty()) {
        reason = "child exited without a verdict";
      }
      report(static_cast<size_t>(w.current), Result{Outcome::Failed, reason});
    }
    w = Worker{};
  };

  std::string stopped;  // why tests still running at the end are killed
  for (;;) {
    if (hasDeadline && Clock::now() >= deadline) {
      stopped = "not run: time limit";
      break;
    }
    // Every idle slot gets a worker (a replacement where one died) and the next test.
    for (Worker& w : workers) {
      if (next >= dirs.size()) break;
      if (w.pid < 0 && !spawn(w)) continue;
      if (w.current >= 0) continue;
      uint32_t index = static_cast<uint32_t>(next);
      if (!writeAll(w.taskFd, &index, sizeof index)) {
        reap(w, true, "");  // died while idle: replaced on the next round
        continue;
      }
      w.current = static_cast<long>(next++);
      w.started = Clock::now();
    }
    bool busy = false, alive = false;
    for (const Worker& w : workers) {
      busy = busy || w.current >= 0;
      alive = alive || w.pid >= 0;
    }
    if (!busy) {
      if (next >= dirs.size()) break;
      if (!alive) {  // not even one worker could be started
        for (; next < dirs.size(); ++next) report(next, Result{Outcome::Failed, "could not start a child process"});
        break;
      }
      continue;
    }
    // Wait for a verdict, a dead worker, the time limit, or a worker past its alarm (a backstop
    // for one that somehow outlives SIGALRM).
    std::vector<pollfd> fds;
    std::vector<Worker*> owners;
    Clock::time_point wake = Clock::time_point::max();
    if (hasDeadline) wake = deadline;
    const auto backstop = std::chrono::seconds(timeoutSeconds + 10);
    for (Worker& w : workers) {
      if (w.pid < 0) continue;
      fds.push_back(pollfd{w.resultFd, POLLIN, 0});
      owners.push_back(&w);
      if (w.current >= 0 && timeoutSeconds > 0) wake = std::min(wake, w.started + backstop);
    }
    int waitMs = -1;
    if (wake != Clock::time_point::max()) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wake - Clock::now()).count() + 1;
      waitMs = static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60000)));
    }
    int ready = poll(fds.data(), fds.size(), waitMs);
    if (ready < 0 && errno != EINTR) {
      std::perror("poll");
      stopped = "not run: the runner failed";
      break;
    }
    for (size_t i = 0; ready > 0 && i < fds.size(); i++) {
      if (fds[i].revents == 0) continue;
      Worker& w = *owners[i];
      char buffer[4096];
      ssize_t n = read(w.resultFd, buffer, sizeof buffer);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        reap(w, false, "");  // the worker died: the test it ran (if any) failed
        continue;
      }
      w.pending.append(buffer, static_cast<size_t>(n));
      if (takeFrames(w)) reap(w, false, "");  // retire a worker after a failed test
    }
    for (Worker& w : workers) {
      if (w.current >= 0 && timeoutSeconds > 0 && Clock::now() >= w.started + backstop) {
        reap(w, true, "timed out after " + std::to_string(timeoutSeconds) + " s");
      }
    }
  }
  for (Worker& w : workers) {
    if (w.pid < 0) continue;
    reap(w, !stopped.empty(), stopped);
  }
  return next;
}

std::string formatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
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
  const Clock::time_point start = Clock::now();
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: kiln_conformance <root> [--suite NAME]... [--filter SUBSTR] [--known FILE] "
                 "[--failures FILE] [--timeout SECONDS] [--time-limit SECONDS] [--jobs N] [--verbose]\n");
    return 2;
  }
  std::string root = argv[1];
  std::vector<std::string> suites;
  std::string filter, knownPath, failuresPath;
  int timeoutSeconds = 60;
  double timeLimitSeconds = 0;
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
    else if (arg == "--time-limit") timeLimitSeconds = std::stod(next());
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
  const char* backendEnv = std::getenv("KILN_CONFORMANCE_BACKEND");
  const std::string backend = backendEnv ? backendEnv : "";

  // Every suite's tests in one list, so the workers go on to the next suite while the last tests
  // of one finish; suite s holds tests [begin, end).
  struct Suite {
    std::string name;
    size_t begin = 0, end = 0;
    int passed = 0, failed = 0, unsupported = 0, passedWithHostLayers = 0;
  };
  std::vector<Suite> tally;
  std::vector<std::string> keys, dirs;
  for (const std::string& suite : suites) {
    std::string suiteDir = root + "/" + suite;
    if (!isDirectory(suiteDir)) {
      std::fprintf(stderr, "suite folder %s not found\n", suiteDir.c_str());
      return 2;
    }
    Suite entry;
    entry.name = suite;
    entry.begin = dirs.size();
    for (const std::string& test : listDir(suiteDir)) {
      if (!filter.empty() && test.find(filter) == std::string::npos) continue;
      std::string dir = suiteDir + "/" + test;
      if (!exists(dir + "/model.onnx")) continue;
      keys.push_back(suite + "/" + test);
      dirs.push_back(dir);
    }
    entry.end = dirs.size();
    tally.push_back(entry);
  }

  int unexpected = 0;
  std::vector<std::string> nowPassing, summaries;
  auto summarize = [&](const Suite& s) {
    char line[256];
    std::snprintf(line, sizeof line, "%s: %d passed, %d failed, %d unsupported", s.name.c_str(), s.passed,
                  s.failed, s.unsupported);
    std::printf("%s\n", line);
    summaries.push_back(line);
    if (!backend.empty() && backend != "cpu") {
      std::snprintf(line, sizeof line, "%s on %s: %d of the %d passed ran every layer on the device, %d used host layers",
                    s.name.c_str(), backend.c_str(), s.passed - s.passedWithHostLayers, s.passed,
                    s.passedWithHostLayers);
      std::printf("%s\n", line);
      summaries.push_back(line);
    }
    std::fflush(stdout);
  };
  // Results come in any order; each is printed once it and every test before it are in, and each
  // suite's summary once its last test is.
  std::vector<Result> results(dirs.size(), Result{Outcome::Failed, "not run"});
  std::vector<bool> done(dirs.size(), false);
  size_t printed = 0, suiteIndex = 0;
  auto advance = [&]() {
    for (;;) {
      while (suiteIndex < tally.size() && tally[suiteIndex].end == printed) summarize(tally[suiteIndex++]);
      if (printed >= dirs.size() || !done[printed]) return;
      Suite& suite = tally[suiteIndex];
      const std::string& key = keys[printed];
      const Result& result = results[printed];
      bool isKnown = known.count(key) != 0;
      switch (result.outcome) {
        case Outcome::Passed:
          suite.passed++;
          if (result.hostLayers > 0) suite.passedWithHostLayers++;
          if (isKnown) nowPassing.push_back(key);
          if (verbose && result.hostLayers > 0) std::printf("PASS %s (%d host layers)\n", key.c_str(), result.hostLayers);
          else if (verbose) std::printf("PASS %s\n", key.c_str());
          break;
        case Outcome::Unsupported:
          suite.unsupported++;
          if (verbose) std::printf("UNSUPPORTED %s: %s\n", key.c_str(), result.reason.c_str());
          if (failures.is_open()) failures << key << "  unsupported: " << result.reason << "\n" << std::flush;
          break;
        case Outcome::Failed:
          suite.failed++;
          if (!isKnown) unexpected++;
          if (verbose || !isKnown) {
            std::printf("%s %s: %s\n", isKnown ? "KNOWN-FAIL" : "FAIL", key.c_str(), result.reason.c_str());
          }
          if (failures.is_open()) failures << key << "  " << result.reason << "\n" << std::flush;
          break;
      }
      std::fflush(stdout);
      printed++;
    }
  };
  advance();  // suites with no tests
  auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeLimitSeconds));
  size_t handedOut = runAll(dirs, timeoutSeconds, jobs, timeLimitSeconds > 0, deadline, [&](size_t index, Result result) {
    results[index] = std::move(result);
    done[index] = true;
    advance();
  });

  // Stopped by the time limit: the suite cut short gets a summary of what ran, and one line counts
  // the tests that never ran, per suite.
  size_t notRun = dirs.size() - handedOut;
  std::string notRunBySuite;
  if (notRun > 0) {
    if (suiteIndex < tally.size() && printed > tally[suiteIndex].begin) summarize(tally[suiteIndex]);
    for (const Suite& s : tally) {
      size_t count = s.end - std::min(s.end, std::max(s.begin, handedOut));
      if (count == 0) continue;
      notRunBySuite += (notRunBySuite.empty() ? "" : ", ") + s.name + " " + std::to_string(count);
    }
  }
  for (const std::string& key : nowPassing) std::printf("now passing (remove from known failures): %s\n", key.c_str());
  for (const std::string& line : summaries) std::printf("%s\n", line.c_str());
  if (unexpected > 0) std::printf("%d failure(s) not listed in the known-failures file\n", unexpected);
  if (notRun > 0) {
    std::string why = timeLimitSeconds > 0 && Clock::now() >= deadline
                          ? "time limit of " + formatSeconds(timeLimitSeconds) + " s reached: "
                          : "the runner stopped early: ";
    std::printf("%s%zu of %zu tests not run (%s)\n", why.c_str(), notRun, dirs.size(), notRunBySuite.c_str());
  }
  std::fflush(stdout);
  return unexpected > 0 || notRun > 0 ? 1 : 0;
}
