#pragma once
// One exception type for the whole project, thrown through check macros whose
// messages say what was expected (faiss style).

#include <sstream>
#include <stdexcept>
#include <string>

namespace qnas {

/// Every error qnas reports to a user is an Error: the message names the file,
/// key or value at fault and what was expected.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace qnas

/// Throws qnas::Error with the concatenation of the arguments.
#define QNAS_THROW(...) throw ::qnas::Error(::qnas::detail::concat(__VA_ARGS__))

/// Throws qnas::Error with the message when cond is false.
#define QNAS_CHECK(cond, ...)   \
  do {                          \
    if (!(cond)) {              \
      QNAS_THROW(__VA_ARGS__);  \
    }                           \
  } while (0)
