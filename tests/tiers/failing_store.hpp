// A remote_store for the transfer tests that fails, or kills the process,
// at a chosen put_chunks: a push stopped in the middle.
#pragma once

#include "tiers/chunks/remote_store.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace larder::chunks::test {

// A remote_store that passes everything on to another and, at the
// `fail_at`-th put_chunks (from 1), fails or kills the process.
class failing_store final : public remote_store {
 public:
  failing_store(remote_store& inner, int fail_at, bool kill) : inner_(inner), fail_at_(fail_at), kill_(kill) {}
  const std::string& where() const override { return inner_.where(); }
  status has_chunks(const fingerprint* n, std::size_t c, std::vector<bool>* p) override { return inner_.has_chunks(n, c, p); }
  status get_chunks(const fingerprint* n, std::size_t c, std::vector<stored_chunk>* o) override {
    return inner_.get_chunks(n, c, o);
  }
  status put_chunks(const std::vector<stored_chunk>& chunks) override {
    if (++puts_ == fail_at_) {
      if (kill_) ::kill(::getpid(), SIGKILL);
      return status::from_errno(EIO, "an injected failure");
    }
    return inner_.put_chunks(chunks);
  }
  status sync_chunks() override { return inner_.sync_chunks(); }
  status list_versions(std::vector<version_id>* o) override { return inner_.list_versions(o); }
  status get_version(const version_id& id, std::string* m, std::string* t) override { return inner_.get_version(id, m, t); }
  status has_table(const fingerprint& id, bool* present) override { return inner_.has_table(id, present); }
  status put_version(std::string_view m, std::string_view t, version_id* id) override { return inner_.put_version(m, t, id); }
  status list_refs(std::vector<ref_entry>* o) override { return inner_.list_refs(o); }
  status set_ref(const std::string& n, const version_id& id, const version_id* e) override { return inner_.set_ref(n, id, e); }
  status release() override { return inner_.release(); }

 private:
  remote_store& inner_;
  int fail_at_;
  bool kill_;
  int puts_ = 0;
};

}  // namespace larder::chunks::test
