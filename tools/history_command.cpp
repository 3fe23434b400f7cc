// `larder diff`, `tag` and `branch`; see history_command.hpp.
#include "history_command.hpp"

#include "output.hpp"

#include <larder/larder.hpp>

#include <cstdio>

namespace {

using larder_tool::human_size;
using larder_tool::json;
using larder_tool::print_json;
using larder_tool::printable;

std::string area_name(const larder::area_difference& a) {
  if (a.pod >= 0) return "pod " + std::to_string(a.pod) + (a.name.empty() ? "" : " (" + a.name + ")");
  if (a.segment >= 0) return "segment " + std::to_string(a.segment);
  return "heap metadata";
}

}  // namespace

history_command::history_command(CLI::App& app) {
  diff_ = app.add_subcommand("diff", "what differs between two versions, or a version and the heap");
  tag_ = app.add_subcommand("tag", "create (or with -d delete) a tag naming a version; list tags without NAME");
  branch_ = app.add_subcommand("branch", "create (or with -d delete) a branch; list branches without NAME");
  for (CLI::App* c : {diff_, tag_, branch_}) {
    c->add_option("heap", heap_, "heap file path (or shm name with --shm)")->required();
    c->add_flag("--shm", shm_, "HEAP names a POSIX shared-memory object");
    c->add_option("--store", store_, "the version store directory (default: HEAP.versions beside a file heap)");
    c->add_flag("--json", json_, "print JSON instead of text");
  }
  diff_->add_option("from", from_, "a version id, an unambiguous prefix, or a branch or tag")->required();
  diff_->add_option("to", to_, "another version (default: the heap as it is now)");
  for (CLI::App* c : {tag_, branch_}) {
    c->add_option("name", name_, "the tag's or branch's name");
    c->add_option("version", version_, "the version it names (default: HEAD's)");
    c->add_flag("-d,--delete", remove_, "delete NAME");
  }
}

bool history_command::chosen() const { return *diff_ || *tag_ || *branch_; }

std::string history_command::store() const {
  if (!store_.empty()) return store_;
  return shm_ ? std::string() : heap_ + ".versions";
}

int history_command::run() {
  if (store().empty()) {
    std::fprintf(stderr, "larder: a shm heap has no default version store: give --store\n");
    return larder_tool::kExitUsage;
  }
  try {
    if (*diff_) return diff();
    return refs(*tag_ ? "tags" : "heads");
  } catch (const larder::error& e) {
    std::fprintf(stderr, "larder: %s\n", printable(e.what()).c_str());
    return larder_tool::exit_code_of(e.result());
  }
}

int history_command::diff() {
  larder::version_diff d;
  if (to_.empty()) {
    larder::heap_options o;
    o.kind = shm_ ? larder::backing::shm : larder::backing::file;
    o.name = heap_;
    o.mode = larder::open_mode::open;
    o.read_only = true;
    larder::heap h(o);
    if (!store_.empty() || shm_) larder::throw_if_error(larder::use_version_store(h, store()));
    larder::throw_if_error(larder::diff(h, from_, &d));
  } else {
    larder::version_store s;
    larder::throw_if_error(larder::version_store::open(store(), &s));
    larder::throw_if_error(s.diff(from_, to_, &d));
  }
  if (json_) {
    json roots = json::array(), areas = json::array();
    for (const auto& r : d.roots) roots.push_back({{"name", r.name}, {"change", r.change}});
    for (const auto& a : d.areas)
      areas.push_back({{"pod", a.pod >= 0 ? json(a.pod) : json(nullptr)},
                       {"segment", a.segment >= 0 ? json(a.segment) : json(nullptr)}, {"name", a.name},
                       {"pages", a.pages}, {"bytes", a.bytes}, {"bytes_in_use_before", a.bytes_in_use_before},
                       {"bytes_in_use_after", a.bytes_in_use_after}});
    print_json({{"from", d.from}, {"to", d.to.empty() ? json(nullptr) : json(d.to)}, {"pages", d.pages},
                {"bytes", d.bytes}, {"pages_fingerprinted", d.pages_fingerprinted}, {"roots", roots},
                {"areas", areas}});
    return larder_tool::kExitOk;
  }
  std::printf("%s .. %s: %llu pages differ (%s)\n", d.from.c_str(), d.to.empty() ? "the heap" : d.to.c_str(),
              static_cast<unsigned long long>(d.pages), human_size(d.bytes).c_str());
  for (const auto& r : d.roots) std::printf("  root %-30s %s\n", printable(r.name).c_str(), r.change.c_str());
  for (const auto& a : d.areas) {
    std::printf("  %-36s %8llu pages", printable(area_name(a)).c_str(), static_cast<unsigned long long>(a.pages));
    if (a.pod >= 0 && a.bytes_in_use_before != a.bytes_in_use_after)
      std::printf(", in use %s -> %s", human_size(a.bytes_in_use_before).c_str(),
                  human_size(a.bytes_in_use_after).c_str());
    std::printf("\n");
  }
  return larder_tool::kExitOk;
}

int history_command::refs(const std::string& kind) {
  larder::version_store s;
  larder::throw_if_error(larder::version_store::open(store(), &s));
  const std::string ref = kind + "/" + name_;
  if (!name_.empty() && remove_) {
    larder::throw_if_error(s.delete_ref(ref));
    if (json_) print_json({{"deleted", ref}});
    else std::printf("deleted %s\n", printable(ref).c_str());
    return larder_tool::kExitOk;
  }
  if (!name_.empty()) {
    larder::throw_if_error(s.create_ref(ref, version_));
    std::string id;
    larder::throw_if_error(s.resolve(ref, &id));
    if (json_) print_json({{"name", ref}, {"id", id}});
    else std::printf("%s names %s\n", printable(ref).c_str(), id.c_str());
    return larder_tool::kExitOk;
  }
  if (remove_) {
    std::fprintf(stderr, "larder: -d needs the NAME to delete\n");
    return larder_tool::kExitUsage;
  }
  std::vector<larder::ref_info> all;
  larder::throw_if_error(s.refs(&all));
  std::string head;
  larder::throw_if_error(s.head(&head));
  json list = json::array();
  for (const auto& r : all) {
    if (!r.name.starts_with(kind + "/")) continue;
    if (json_) list.push_back({{"name", r.name}, {"id", r.id}, {"head", r.name == head}});
    else std::printf("%c %-30s %s\n", r.name == head ? '*' : ' ', printable(r.name).c_str(), r.id.c_str());
  }
  if (json_) print_json(list);
  return larder_tool::kExitOk;
}
