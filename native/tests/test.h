// A tiny test framework for native unit tests (kiln_tests). Register with KILN_TEST(suite, name);
// run all with `kiln_tests`, or a subset with `kiln_tests <substring>`.
#pragma once
#include <cmath>
#include <cstdlib>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace kiln_test {

struct TestCase {
  std::string name;
  std::function<void()> fn;
};

std::vector<TestCase>& registry();

struct Registrar {
  Registrar(const std::string& name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Sets an environment variable for one scope (a failing check must not leak it into later tests),
// then puts back what the process had: a setting given to the whole test run (KILN_CUDA_... on the
// GPU machine) holds again for the tests after one that overrides it.
struct ScopedEnv {
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* before = std::getenv(name)) had_ = true, before_ = before;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, before_.c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  const char* name_;
  bool had_ = false;
  std::string before_;
};

}  // namespace kiln_test

#define KILN_TEST(suite, name)                                                              \
  static void suite##_##name();                                                            \
  static ::kiln_test::Registrar kTestRegistrar_##suite##_##name(#suite "." #name, suite##_##name); \
  static void suite##_##name()

#define EXPECT_TRUE(cond)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::ostringstream kiln_msg;                                                          \
      kiln_msg << __FILE__ << ":" << __LINE__ << ": expected " #cond;                       \
      throw ::kiln_test::Failure(kiln_msg.str());                                           \
    }                                                                                       \
  } while (0)

#define EXPECT_EQ(a, b)                                                                     \
  do {                                                                                      \
    auto kiln_a = (a);                                                                      \
    auto kiln_b = (b);                                                                      \
    if (!(kiln_a == kiln_b)) {                                                              \
      std::ostringstream kiln_msg;                                                          \
      kiln_msg << __FILE__ << ":" << __LINE__ << ": expected " #a " == " #b ", got " << kiln_a \
               << " vs " << kiln_b;                                                         \
      throw ::kiln_test::Failure(kiln_msg.str());                                           \
    }                                                                                       \
  } while (0)

#define EXPECT_NEAR(a, b, tol)                                                              \
  do {                                                                                      \
    double kiln_a = (a), kiln_b = (b);                                                      \
    if (!(std::fabs(kiln_a - kiln_b) <= (tol))) {                                           \
      std::ostringstream kiln_msg;                                                          \
      kiln_msg << __FILE__ << ":" << __LINE__ << ": expected " #a " ~= " #b ", got " << kiln_a \
               << " vs " << kiln_b;                                                         \
      throw ::kiln_test::Failure(kiln_msg.str());                                           \
    }                                                                                       \
  } while (0)

// Expects `stmt` to throw kiln::KilnError whose message contains `substr`.
#define EXPECT_THROWS_WITH(stmt, substr)                                                    \
  do {                                                                                      \
    bool kiln_threw = false;                                                                \
    try {                                                                                   \
      stmt;                                                                                 \
    } catch (const ::kiln::KilnError& e) {                                                  \
      kiln_threw = true;                                                                    \
      if (std::string(e.what()).find(substr) == std::string::npos) {                        \
        throw ::kiln_test::Failure(std::string(__FILE__) + ":" + std::to_string(__LINE__) + \
                                   ": error message '" + e.what() + "' lacks '" + (substr) + "'"); \
      }                                                                                     \
    }                                                                                       \
    if (!kiln_threw)                                                                        \
      throw ::kiln_test::Failure(std::string(__FILE__) + ":" + std::to_string(__LINE__) +   \
                                 ": expected " #stmt " to throw");                          \
  } while (0)
