// A lazy checkout's pages: where they come from (lazy_source), waiting for
// them (finish_lazy), and the public queries over both. The loading itself
// is the uffd tracker's (port::write_tracker::load_lazily); checkout.cpp
// starts it. See docs/versions.md, "Lazy checkout".
#include "runtime/heap_impl.hpp"
#include "runtime/versions_state.hpp"

#include <cstdio>

namespace larder {

int lazy_source::fill(const std::uintptr_t* pages, std::size_t count, void* out) noexcept {
  try {
    std::vector<std::size_t> numbers(count);
    for (std::size_t i = 0; i < count; ++i) numbers[i] = (pages[i] - base_) / port::kOsPageSize;
    status s = read_pages(store_, table_, numbers.data(), count, static_cast<char*>(out), fetch_);
    if (s.ok()) return 0;
    std::lock_guard guard(lock_);
    if (failure_.empty()) failure_ = s.message();
    return s.is(errc::corrupt) ? EBADMSG : EIO;
  } catch (...) {
    return ENOMEM;
  }
}

std::string lazy_source::failure() const {
  std::lock_guard guard(lock_);
  return failure_;
}

namespace {

std::string failure_text(const heap_impl& impl, const port::lazy_progress& p, const lazy_source& source) {
  char offset[32];
  std::snprintf(offset, sizeof offset, "%#llx", static_cast<unsigned long long>(p.first_failed - impl.region.base()));
  std::string why = source.failure();
  return "a lazy checkout could not load " + std::to_string(p.failed) + " page(s), the first at offset " + offset +
         " (" + (why.empty() ? std::string(larder::strerror(p.first_error)) : why) + "): they read as zeros";
}

}  // namespace

status finish_lazy(heap_impl& impl) {
  if (!impl.versions) return {};
  versions_state& v = *impl.versions;
  port::lazy_progress done;
  std::unique_ptr<lazy_source> source;
  std::unique_ptr<remote_checkout> remote;
  bool moves_head = false;
  {
    // Under the lock lazy_checkout_progress reads the source with; a
    // second caller waits here and finds nothing left to finish.
    std::lock_guard guard(impl.tracker_lock);
    if (!v.lazy) return {};
    if (impl.tracker) done = impl.tracker->finish_lazy();
    source = std::move(v.lazy);
    remote = std::move(v.remote);
    if (remote) {
      v.chunks_fetched = remote->fetch->chunks_fetched();
      v.bytes_fetched = remote->fetch->bytes_fetched();
    }
    moves_head = v.lazy_moves_head;
    v.lazy_moves_head = false;
  }
  // A forked child (it cannot write the heap) waited for nothing: HEAD,
  // the store whose lock it shares and the remote's connection (whose
  // threads did not come with the fork) are its parent's.
  const bool parent = impl.can_write();
  if (!parent) (void)remote.release();
  // A checkout that failed (its error said so already) or whose loader
  // never started leaves HEAD where it was.
  const bool whole = moves_head && parent && done.failed == 0 && done.pending == 0;
  if (remote) {
    // The version and its ref once every chunk it names is in the store;
    // else what was fetched stays there as garbage.
    status published = whole ? publish_remote_version(v, *remote) : v.store->release();
    if (whole && !published.ok()) return published;
  }
  if (done.failed == 0) {
    if (!whole) return {};
    return v.lazy_head_branch.empty() ? v.store->set_head_detached(v.current) : v.store->set_head(v.lazy_head_branch);
  }
  std::string what = failure_text(impl, done, *source);
  impl.tx_failure.set(what);
  return status(errc::corrupt, impl.name + ": " + what);
}

lazy_checkout_state lazy_checkout_progress(heap& h) {
  lazy_checkout_state out;
  heap_impl* impl = h.impl();
  if (impl == nullptr || !impl->versions) return out;
  std::lock_guard guard(impl->tracker_lock);
  const versions_state& v = *impl->versions;
  out.chunks_fetched = v.remote ? v.remote->fetch->chunks_fetched() : v.chunks_fetched;
  out.bytes_fetched = v.remote ? v.remote->fetch->bytes_fetched() : v.bytes_fetched;
  if (!impl->tracker || !impl->versions->lazy) return out;
  port::lazy_progress p = impl->tracker->lazy_state();
  out.pages_pending = p.pending;
  out.pages_failed = p.failed;
  if (p.failed != 0) out.error = failure_text(*impl, p, *impl->versions->lazy);
  return out;
}

status finish_checkout(heap& h) {
  if (h.impl() == nullptr) return status(errc::invalid_argument, "the heap is not open");
  return finish_lazy(*h.impl());
}

}  // namespace larder
