// larder::strerror and status::to_string. Lives in port/ because most codes
// are errno values.
#include <larder/status.hpp>

#include <string.h>

namespace larder {

const char* strerror(int code) noexcept {
  switch (static_cast<errc>(code)) {
    case errc::ok: return "success";
    case errc::not_a_heap: return "not a larder heap";
    case errc::corrupt: return "the heap is damaged";
    case errc::truncated: return "the heap file is truncated";
    case errc::newer_format: return "the heap was written in a newer format";
    case errc::address_taken: return "the heap's address range is already in use in this process";
    case errc::heap_busy: return "another process has the heap open for writing";
    case errc::not_found: return "not found";
    case errc::already_exists: return "already exists";
    case errc::type_mismatch: return "the root's recorded size does not match the type";
    case errc::table_full: return "the table is full";
    case errc::read_only: return "the heap is open read-only";
    case errc::invalid_argument: return "invalid argument";
    case errc::out_of_space: return "the heap is full";
    case errc::foreign_build: return "the heap was written by an incompatible build";
    case errc::unsupported: return "not supported by this kernel or CPU";
    case errc::tx_aborted: return "the transaction was aborted";
    case errc::already_sealed: return "the object is sealed";
    case errc::not_sealed: return "the object is not sealed";
    case errc::not_creator: return "the object was created by another client";
    case errc::not_referenced: return "this client holds no reference to the object";
    case errc::store_full: return "the store is full and nothing can be evicted";
    case errc::timed_out: return "timed out";
    case errc::notifications_lost: return "notifications were lost: the subscriber's queue was full";
    case errc::first_own_code: break;
  }
  if (code > 0 && code < static_cast<int>(errc::first_own_code)) return ::strerrordesc_np(code);
  return "unknown error";
}

std::string status::to_string() const {
  if (ok()) return "OK";
  const char* description = larder::strerror(code_);
  if (description == nullptr) description = "unknown error";
  if (message_.empty()) return description;
  return message_ + ": " + description;
}

}  // namespace larder
