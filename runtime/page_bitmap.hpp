// page_bitmap: a set of a heap's 4 KiB pages, one bit each, for the pages
// written since a checkpoint (runtime/versions.cpp). Grows as pages past
// its end are added; costs a bit per page of the heap's used range.
#pragma once

#include "port/os.hpp"
#include "port/write_tracker.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace larder {

class page_bitmap {
 public:
  void add(std::size_t page) {
    if (page / 64 >= words_.size()) words_.resize(page / 64 + 1);
    words_[page / 64] |= std::uint64_t{1} << (page % 64);
    empty_ = false;
  }
  // Runs of written pages at addresses from `base`.
  void add(std::uintptr_t base, const std::vector<port::written_run>& runs) {
    for (const port::written_run& r : runs) {
      std::size_t first = (r.start - base) / port::kOsPageSize;
      for (std::size_t k = 0; k < r.pages; ++k) add(first + k);
    }
  }
  void remove(std::size_t page) noexcept {
    if (page / 64 < words_.size()) words_[page / 64] &= ~(std::uint64_t{1} << (page % 64));
  }
  void add(const page_bitmap& other) {
    if (other.words_.size() > words_.size()) words_.resize(other.words_.size());
    for (std::size_t i = 0; i < other.words_.size(); ++i) words_[i] |= other.words_[i];
    empty_ = empty_ && other.empty_;
  }
  bool contains(std::size_t page) const noexcept {
    return page / 64 < words_.size() && ((words_[page / 64] >> (page % 64)) & 1) != 0;
  }
  // True when nothing was added since the last clear() (remove() does not
  // make it true again).
  bool empty() const noexcept { return empty_; }
  void clear() noexcept {
    words_.clear();
    empty_ = true;
  }
  // Calls fn(page) for each page in the set, ascending.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < words_.size(); ++i) {
      for (std::uint64_t w = words_[i]; w != 0; w &= w - 1) fn(i * 64 + static_cast<std::size_t>(std::countr_zero(w)));
    }
  }
  // The set as ascending runs at addresses from `base`.
  void append_runs(std::uintptr_t base, std::vector<port::written_run>* out) const {
    for_each([&](std::size_t page) {
      std::uintptr_t start = base + page * port::kOsPageSize;
      if (!out->empty() && out->back().start + out->back().pages * port::kOsPageSize == start) {
        ++out->back().pages;
      } else {
        out->push_back({start, 1});
      }
    });
  }

 private:
  std::vector<std::uint64_t> words_;
  bool empty_ = true;
};

}  // namespace larder
