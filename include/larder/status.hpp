// larder::status: the result of every fallible call in larder.
// Codes are errno values or larder's own, which live in a reserved range
// (errc::first_own_code and above) that cannot collide with errno.
#pragma once

#include <larder/export.hpp>

#include <exception>
#include <string>
#include <utility>
#include <string_view>

namespace larder {

enum class errc : int {
  ok = 0,
  first_own_code = 20000,
  not_a_heap = 20001,        // the file does not start with larder's magic
  corrupt = 20002,           // both superblock copies fail their checksum
  truncated = 20003,         // the file is shorter than its superblock says
  newer_format = 20004,      // written by a newer larder; refused unchanged
  address_taken = 20005,     // the recorded base address is in use here
  heap_busy = 20006,         // another process has the heap open for writing
  not_found = 20007,         // no such root, pod or heap
  already_exists = 20008,    // a root or pod of that name exists
  type_mismatch = 20009,     // a root's recorded size differs from the type's
  table_full = 20010,        // no free slot in the pod or root table
  read_only = 20011,         // the heap was opened read-only
  invalid_argument = 20012,  // a name too long, a size of zero, ...
  out_of_space = 20013,      // the heap's reservation or the disk is full
  foreign_build = 20014,     // written by a build with another layout
  unsupported = 20015,       // this kernel or CPU lacks the feature asked for
  tx_aborted = 20016,        // the transaction was aborted; it can do nothing more
  // The object store's (larder/store.hpp), in a range of their own.
  already_sealed = 20100,      // the object is sealed: it can no longer change
  not_sealed = 20101,          // the object is not sealed yet
  not_creator = 20102,         // only the client that created the object may do this
  not_referenced = 20103,      // release without a reference held by this client
  store_full = 20104,          // the object does not fit and nothing can be evicted
  timed_out = 20105,           // the wait ended before what it waited for happened
  notifications_lost = 20106,  // a subscriber's queue was full: notifications dropped
};

// Returns a static, human-readable description of an errno value or errc.
LARDER_EXPORT const char* strerror(int code) noexcept;

class [[nodiscard]] status {
 public:
  status() noexcept = default;
  status(errc code, std::string_view message = {})
      : code_(static_cast<int>(code)), message_(message) {}
  // An errno value from a failed system call, with what was being done.
  static status from_errno(int err, std::string_view what) {
    status s;
    s.code_ = err;
    s.message_ = what;
    return s;
  }

  bool ok() const noexcept { return code_ == 0; }
  explicit operator bool() const noexcept { return ok(); }
  int code() const noexcept { return code_; }
  bool is(errc c) const noexcept { return code_ == static_cast<int>(c); }
  bool is_corruption() const noexcept {
    return is(errc::corrupt) || is(errc::truncated) || is(errc::not_a_heap);
  }
  const std::string& message() const noexcept { return message_; }
  // "message: description of the code".
  LARDER_EXPORT std::string to_string() const;

 private:
  int code_ = 0;
  std::string message_;
};

// Thrown only by the throwing conveniences of the C++ layer.
class LARDER_EXPORT error : public std::exception {
 public:
  explicit error(larder::status s) : status_(std::move(s)), what_(status_.to_string()) {}
  const char* what() const noexcept override { return what_.c_str(); }
  const larder::status& result() const noexcept { return status_; }
  int code() const noexcept { return status_.code(); }

 private:
  larder::status status_;
  std::string what_;
};

inline void throw_if_error(const status& s) {
  if (!s.ok()) throw error(s);
}

// Builds with assertions (a debug build; -DLARDER_DEBUG_INTERNAL=ON and
// -DLARDER_DEBUG_FULL=ON add internal checks and full walks of the heap's
// invariants) call the handler when one fails; by default it prints the
// place and aborts. A handler that returns is followed by abort(). Returns
// the handler installed before; nullptr restores the default.
using assertion_handler = void (*)(const char* file, int line, const char* condition);
LARDER_EXPORT assertion_handler set_assertion_handler(assertion_handler handler) noexcept;

}  // namespace larder
