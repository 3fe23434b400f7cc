// `larder checkpoint`, `log`, `checkout` and `versions`; see
// versions_command.hpp.
#include "versions_command.hpp"

#include "output.hpp"
#include "progress.hpp"

#include <larder/larder.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

using larder_tool::human_size;
using larder_tool::json;
using larder_tool::print_json;
using larder_tool::printable;

int fail(const larder::status& s) {
  std::fprintf(stderr, "larder: %s\n", printable(s.to_string()).c_str());
  return larder_tool::exit_code_of(s);
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

json parsed_or_null(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json(nullptr) : j;
}

}  // namespace

versions_command::versions_command(CLI::App& app) {
  checkpoint_ = app.add_subcommand("checkpoint", "record the heap as a new version in its version store");
  log_ = app.add_subcommand("log", "list versions from HEAD back, with their parents");
  checkout_ = app.add_subcommand("checkout", "make the heap equal to a version (opens it for writing)");
  versions_ = app.add_subcommand("versions", "version store housekeeping: verify, gc, du or delete");
  versions_->add_option("action", action_, "verify, gc, du or delete")
      ->required()
      ->check(CLI::IsMember({"verify", "gc", "du", "delete"}));
  for (CLI::App* c : {checkpoint_, log_, checkout_, versions_}) {
    c->add_option("heap", heap_, "heap file path (or shm name with --shm)")->required();
    c->add_flag("--shm", shm_, "HEAP names a POSIX shared-memory object");
    c->add_option("--store", store_, "the version store directory (default: HEAP.versions beside a file heap)");
    c->add_flag("--json", json_, "print JSON instead of text");
  }
  checkpoint_->add_option("-m,--message", message_, "what the version is")->required();
  checkout_->add_option("version", version_, "a version id, an unambiguous prefix, or a branch or tag")->required();
  log_->add_flag("--all", all_, "every version in the store, newest first");
  versions_->add_option("version", version_, "delete: the version to delete");
  versions_->add_flag("--force", force_, "delete: even while a branch or tag names it");
  checkout_->add_flag("--lazy", lazy_,
                      "return once the heap is usable and load the differing pages on first touch (shm heaps; the "
                      "command then waits for every page before it closes the heap)");
  checkout_->add_option("--from", from_,
                        "check the version out straight from this remote (a directory or rados:POOL[@CONF]), "
                        "fetching only the chunks of differing pages that the store lacks into the store");
  checkout_->add_option("--pod", pods_, "restore only this pod (an id or a name; repeatable); the rest stays");
  checkout_->add_option("--root", roots_,
                        "restore only the pod holding this root's object in the version and the pods it reaches over "
                        "the version's reference graph (repeatable)");
  checkout_->add_flag("--offline", offline_,
                      "write the version into the heap's file without opening it as a heap (also done when it does "
                      "not open)");
}

bool versions_command::chosen() const { return *checkpoint_ || *log_ || *checkout_ || *versions_; }

std::string versions_command::store() const {
  if (!store_.empty()) return store_;
  return shm_ ? std::string() : heap_ + ".versions";
}

int versions_command::run() {
  if (store().empty()) {
    std::fprintf(stderr, "larder: a shm heap has no default version store: give --store\n");
    return larder_tool::kExitUsage;
  }
  try {
    if (*checkpoint_) return checkpoint();
    if (*checkout_) return checkout();
    if (*log_) return log();
    return housekeeping();
  } catch (const larder::error& e) {
    return fail(e.result());
  }
}

int versions_command::checkpoint() {
  larder::heap_options o;
  o.kind = shm_ ? larder::backing::shm : larder::backing::file;
  o.name = heap_;
  o.mode = larder::open_mode::open;
  larder::heap h(o);
  if (!store_.empty() || shm_) larder::throw_if_error(larder::use_version_store(h, store()));
  larder::checkpoint_stats st;
  {
    larder_tool::progress shown("checkpoint", !json_);
    st = larder::checkpoint(h, message_);
  }
  if (json_) {
    print_json({{"id", st.id}, {"pages_considered", st.pages_considered}, {"pages_in_version", st.pages_in_version},
                {"new_chunks", st.new_chunks}, {"bytes_stored", st.bytes_stored}, {"held_ms", ms(st.held_ns)},
                {"total_ms", ms(st.total_ns)}});
  } else {
    std::printf("version %s: %zu pages read, %zu new chunks (%s), %zu pages in the version; %.1f ms\n",
                st.id.c_str(), st.pages_considered, st.new_chunks, human_size(st.bytes_stored).c_str(),
                st.pages_in_version, ms(st.total_ns));
  }
  return larder_tool::exit_code_of(h.close());
}

larder::status versions_command::chosen_pods(larder::heap& h, std::vector<std::uint32_t>* out) const {
  out->clear();
  const std::vector<larder::pod_info> live = h.pods();
  for (const std::string& name : pods_) {
    auto it = std::find_if(live.begin(), live.end(), [&](const larder::pod_info& p) { return p.name == name; });
    if (it != live.end()) {
      out->push_back(it->id);
      continue;
    }
    char* end = nullptr;
    unsigned long id = std::strtoul(name.c_str(), &end, 10);
    if (name.empty() || *end != '\0' || id > 0xffffffffUL)
      return larder::status(larder::errc::not_found, "no pod \"" + name + "\" in the heap (give its id)");
    out->push_back(static_cast<std::uint32_t>(id));
  }
  if (roots_.empty()) return {};
  std::vector<std::uint32_t> of_roots;
  if (larder::status s = larder::pods_of_roots(h, version_, roots_, &of_roots); !s.ok()) return s;
  for (std::uint32_t id : of_roots)
    if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
  return {};
}

int versions_command::checkout() {
  if (offline_ && (lazy_ || !pods_.empty() || !roots_.empty() || !from_.empty())) {
    std::fprintf(stderr, "larder: --offline writes the whole version from the store: not with --lazy, --pod, --root "
                         "or --from\n");
    return larder_tool::kExitUsage;
  }
  if (!from_.empty() && (!pods_.empty() || !roots_.empty())) {
    std::fprintf(stderr, "larder: --pod and --root restore from the store: pull the version, then check it out\n");
    return larder_tool::kExitUsage;
  }
  larder::heap_options o;
  o.kind = shm_ ? larder::backing::shm : larder::backing::file;
  o.name = heap_;
  o.mode = larder::open_mode::open;
  larder::heap h;
  larder::status opened = offline_ ? larder::status() : larder::heap::open(o, &h);
  if (offline_ || !opened.ok()) {
    if (opened.is(larder::errc::heap_busy) || opened.is(larder::errc::not_found) || !from_.empty()) return fail(opened);
    return restore(opened);
  }
  if (!store_.empty() || shm_) larder::throw_if_error(larder::use_version_store(h, store()));
  larder::checkout_options options;
  options.lazy = lazy_;
  options.remote = from_;
  larder::throw_if_error(chosen_pods(h, &options.pods));
  if ((!pods_.empty() || !roots_.empty()) && options.pods.empty()) {
    std::fprintf(stderr, "larder: no pod to restore\n");
    return larder_tool::kExitUsage;
  }
  larder::checkout_stats st;
  double all_loaded_ms = 0;
  {
    larder_tool::progress shown("checkout", !json_);
    st = larder::checkout(h, version_, options);
    if (lazy_) {
      // The heap closes at the end of this command: every page first.
      const auto from = std::chrono::steady_clock::now();
      larder::throw_if_error(larder::finish_checkout(h));
      all_loaded_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - from).count();
      const larder::lazy_checkout_state fetched = larder::lazy_checkout_progress(h);
      st.chunks_fetched = fetched.chunks_fetched;
      st.bytes_fetched = fetched.bytes_fetched;
    }
  }
  std::string fetched;
  if (!from_.empty())
    fetched = "; " + std::to_string(st.chunks_fetched) + " chunks (" + human_size(st.bytes_fetched) + ") fetched from " +
              printable(from_);
  if (json_) {
    json j = {{"id", st.id},
              {"pages_compared", st.pages_compared},
              {"pages_loaded", st.pages_loaded},
              {"total_ms", ms(st.total_ns)}};
    if (lazy_) {
      j["pages_lazy"] = st.pages_lazy;
      j["all_loaded_ms"] = ms(st.total_ns) + all_loaded_ms;
    }
    if (!options.pods.empty()) j["pods"] = options.pods;
    if (!from_.empty()) {
      j["chunks_fetched"] = st.chunks_fetched;
      j["bytes_fetched"] = st.bytes_fetched;
    }
    print_json(j);
  } else if (!options.pods.empty()) {
    std::printf("restored %zu pod(s) of %s: %zu pages loaded; %.1f ms\n", options.pods.size(), st.id.c_str(),
                st.pages_loaded, ms(st.total_ns));
  } else if (lazy_) {
    std::printf("checked out %s lazily: usable after %.1f ms (%zu pages loaded, %zu on first touch); every page "
                "after %.1f ms%s\n",
                st.id.c_str(), ms(st.total_ns), st.pages_loaded, st.pages_lazy, ms(st.total_ns) + all_loaded_ms,
                fetched.c_str());
  } else {
    std::printf("checked out %s: %zu pages loaded (%zu compared); %.1f ms%s\n", st.id.c_str(), st.pages_loaded,
                st.pages_compared, ms(st.total_ns), fetched.c_str());
  }
  return larder_tool::exit_code_of(h.close());
}

// A heap that does not open (a crash half way through a checkout, say)
// gets the version written into its file instead.
int versions_command::restore(const larder::status& why) {
  if (!why.ok())
    std::fprintf(stderr, "larder: %s does not open (%s): writing the version into its file\n", printable(heap_).c_str(),
                 printable(why.to_string()).c_str());
  larder::checkout_stats st;
  const larder::backing kind = shm_ ? larder::backing::shm : larder::backing::file;
  larder::throw_if_error(larder::restore_version(kind, heap_, version_, store(), &st));
  if (json_) {
    print_json({{"id", st.id}, {"offline", true}, {"pages_loaded", st.pages_loaded}, {"total_ms", ms(st.total_ns)}});
  } else {
    std::printf("restored %s into %s: %zu pages written; %.1f ms\n", st.id.c_str(), printable(heap_).c_str(),
                st.pages_loaded, ms(st.total_ns));
  }
  return larder_tool::kExitOk;
}

int versions_command::log() {
  larder::version_store s;
  larder::throw_if_error(larder::version_store::open(store(), &s));
  std::vector<larder::version_info> versions;
  larder::throw_if_error(s.log(all_, &versions));
  if (json_) {
    json list = json::array();
    for (const auto& v : versions) {
      json j = {{"id", v.id}, {"parent", v.parent.empty() ? json(nullptr) : json(v.parent)},
                {"created", v.created_ns == 0 ? "" : larder_tool::utc_time(v.created_ns)}, {"created_ns", v.created_ns},
                {"message", v.message}, {"refs", v.refs}, {"pages", v.pages}, {"heap_uuid", v.heap_uuid},
                {"heap_size", v.heap_size}, {"damaged", v.damaged}};
      json contents = parsed_or_null(v.roots_and_pods);
      j["roots"] = contents.is_object() && contents.contains("roots") ? contents["roots"] : json::array();
      j["pods"] = contents.is_object() && contents.contains("pods") ? contents["pods"] : json::array();
      list.push_back(j);
    }
    print_json(list);
    return larder_tool::kExitOk;
  }
  for (const auto& v : versions) {
    std::string refs;
    for (const auto& r : v.refs) refs += (refs.empty() ? " (" : ", ") + r;
    if (!refs.empty()) refs += ")";
    std::printf("version %s%s\n", v.id.c_str(), printable(refs).c_str());
    if (v.damaged) {
      std::printf("  damaged: %s\n\n", printable(v.message).c_str());
      continue;
    }
    std::printf("  parent  %s\n  date    %s\n  pages   %zu (%s heap)\n\n    %s\n\n",
                v.parent.empty() ? "none" : v.parent.c_str(), larder_tool::utc_time(v.created_ns).c_str(), v.pages,
                human_size(v.heap_size).c_str(), printable(v.message).c_str());
  }
  return larder_tool::kExitOk;
}

int versions_command::housekeeping() {
  larder::version_store s;
  larder::throw_if_error(larder::version_store::open(store(), &s));
  if (action_ == "verify") {
    larder::store_verify_report r;
    {
      larder_tool::progress shown("verify", !json_);
      larder::throw_if_error(s.verify(&r));
    }
    if (json_) {
      json problems = json::array();
      for (const auto& p : r.problems) problems.push_back({{"file", p.file}, {"what", p.what}});
      print_json({{"clean", r.clean()}, {"chunks_checked", r.chunks_checked}, {"versions_checked", r.versions_checked},
                  {"problems", problems}, {"affected_versions", r.affected_versions}});
    } else {
      for (const auto& p : r.problems) std::printf("%s: %s\n", printable(p.file).c_str(), printable(p.what).c_str());
      for (const auto& v : r.affected_versions) std::printf("affected version %s\n", v.c_str());
      std::printf("%s: %llu chunks and %llu versions checked, %zu problems\n", r.clean() ? "clean" : "damaged",
                  static_cast<unsigned long long>(r.chunks_checked), static_cast<unsigned long long>(r.versions_checked),
                  r.problems.size());
    }
    return r.clean() ? larder_tool::kExitOk : larder_tool::kExitDamaged;
  }
  if (action_ == "gc") {
    larder::store_gc_report r;
    {
      larder_tool::progress shown("gc", !json_);
      larder::throw_if_error(s.gc(&r));
    }
    if (json_) {
      print_json({{"packs_removed", r.packs_removed}, {"packs_written", r.packs_written},
                  {"chunks_copied", r.chunks_copied}, {"chunks_dropped", r.chunks_dropped}, {"bytes_freed", r.bytes_freed}});
    } else {
      std::printf("gc: %llu chunks dropped, %llu copied, %llu packs removed, %s freed\n",
                  static_cast<unsigned long long>(r.chunks_dropped), static_cast<unsigned long long>(r.chunks_copied),
                  static_cast<unsigned long long>(r.packs_removed), human_size(r.bytes_freed).c_str());
    }
    return larder_tool::kExitOk;
  }
  if (action_ == "delete") {
    std::string id;
    larder::throw_if_error(s.resolve(version_, &id));
    larder::throw_if_error(s.delete_version(id, force_));
    if (json_) print_json({{"deleted", id}});
    else std::printf("deleted version %s (versions gc reclaims its chunks)\n", id.c_str());
    return larder_tool::kExitOk;
  }
  larder::store_space r;
  larder::throw_if_error(s.du(&r));
  if (json_) {
    json list = json::array();
    for (const auto& v : r.versions)
      list.push_back({{"id", v.id}, {"pages", v.pages}, {"unique_bytes", v.unique_bytes},
                      {"shared_bytes", v.shared_bytes}, {"freed_by_delete", v.freed_by_delete}});
    print_json({{"packs", r.packs}, {"chunks", r.chunks}, {"pack_bytes", r.pack_bytes}, {"versions", list}});
  } else {
    std::printf("%-32s  %8s  %10s  %10s  %10s\n", "version", "pages", "unique", "shared", "delete frees");
    for (const auto& v : r.versions)
      std::printf("%-32s  %8llu  %10s  %10s  %10s\n", v.id.c_str(), static_cast<unsigned long long>(v.pages),
                  human_size(v.unique_bytes).c_str(), human_size(v.shared_bytes).c_str(),
                  human_size(v.freed_by_delete).c_str());
    std::printf("store: %llu packs, %llu chunks, %s\n", static_cast<unsigned long long>(r.packs),
                static_cast<unsigned long long>(r.chunks), human_size(r.pack_bytes).c_str());
  }
  return larder_tool::kExitOk;
}
