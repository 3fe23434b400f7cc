// The assertion handler; see port/assert.hpp.
#include "port/assert.hpp"

#include "port/os.hpp"

#include <larder/status.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace larder {

namespace {

void print_and_abort(const char* file, int line, const char* condition) {
  char text[512];
  int n = std::snprintf(text, sizeof(text), "larder: assertion failed at %s:%d: %s\n", file, line, condition);
  if (n > 0)
    port::write_stderr(text,
                       static_cast<std::size_t>(n) < sizeof(text) ? static_cast<std::size_t>(n) : sizeof(text) - 1);
  std::abort();
}

std::atomic<assertion_handler> g_handler{&print_and_abort};

}  // namespace

assertion_handler set_assertion_handler(assertion_handler handler) noexcept {
  return g_handler.exchange(handler != nullptr ? handler : &print_and_abort);
}

namespace port {

void assertion_failed(const char* file, int line, const char* condition) noexcept {
  g_handler.load()(file, line, condition);
  std::abort();
}

}  // namespace port

}  // namespace larder
