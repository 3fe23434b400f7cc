// `larder store info|ls|stat|check [--shm] [--json] HEAP`: opens the store
// as one more client (as any client does, that recovers the clients that
// died) and shows it; see docs/tools/larder.md.
#include "store_command.hpp"

#include "output.hpp"

#include <larder/heap.hpp>
#include <larder/store.hpp>

#include <cstdio>
#include <map>
#include <vector>

namespace {

using larder_tool::human_size;
using larder_tool::json;
using larder_tool::printable;

}  // namespace

store_command::store_command(CLI::App& app) {
  command_ = app.add_subcommand("store", "show or check the object store in a heap (docs/store.md)");
  command_->require_subcommand(1);
  info_ = command_->add_subcommand("info", "the store's format, size, clients and the processes attached");
  ls_ = command_->add_subcommand("ls", "list the objects: id, state, sizes, references");
  stat_ = command_->add_subcommand("stat", "objects and bytes by state, capacity used, evictions");
  check_ = command_->add_subcommand("check", "verify the store's index, references and pods (exit 1 on problems)");
  for (CLI::App* c : {info_, ls_, stat_, check_}) {
    c->add_option("heap", heap_, "heap file path (or shm name with --shm)")->required();
    c->add_flag("--shm", shm_, "HEAP names a POSIX shared-memory object");
    c->add_flag("--json", json_, "print JSON instead of text");
  }
}

int store_command::run() {
  larder::store_options options;
  options.heap.kind = shm_ ? larder::backing::shm : larder::backing::file;
  options.heap.name = heap_;
  options.heap.mode = larder::open_mode::open;
  larder::store s;
  if (larder::status st = larder::store::open(options, &s); !st.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(st.to_string()).c_str());
    return larder_tool::exit_code_of(st);
  }
  std::vector<larder::object_info> objects;
  if (larder::status st = s.list(&objects); !st.ok()) {
    std::fprintf(stderr, "larder: %s\n", printable(st.to_string()).c_str());
    return larder_tool::exit_code_of(st);
  }
  larder::store_stats stats = s.stats();
  if (*check_) {
    larder::status st = s.check();
    if (json_) {
      larder_tool::print_json({{"store", heap_}, {"clean", st.ok()}, {"objects", stats.objects},
                               {"problems", st.ok() ? json::array() : json::array({st.message()})}});
    } else if (st.ok()) {
      std::printf("%s: the store is sound: %zu objects, %s\n", printable(heap_).c_str(), stats.objects,
                  human_size(stats.bytes).c_str());
    } else {
      std::printf("%s: %s\n", printable(heap_).c_str(), printable(st.message()).c_str());
    }
    (void)s.close();
    return st.ok() ? larder_tool::kExitOk : larder_tool::kExitDamaged;
  }
  if (*ls_) {
    json list = json::array();
    for (const larder::object_info& o : objects) {
      if (json_) {
        list.push_back({{"id", o.id.text()}, {"state", larder::to_string(o.state)}, {"data_size", o.data_size},
                        {"metadata_size", o.metadata_size}, {"refcount", o.refcount}});
      } else {
        std::printf("%-42s %-9s %10zu %6zu %4u\n", printable(o.id.text()).c_str(), larder::to_string(o.state),
                    o.data_size, o.metadata_size, o.refcount);
      }
    }
    if (json_) larder_tool::print_json(list);
    (void)s.close();
    return larder_tool::kExitOk;
  }
  std::map<std::string, std::pair<std::size_t, std::size_t>> by_state;  // objects, bytes
  std::size_t referenced = 0;
  for (const larder::object_info& o : objects) {
    auto& [count, bytes] = by_state[larder::to_string(o.state)];
    ++count;
    bytes += o.data_size + o.metadata_size;
    referenced += o.refcount != 0;
  }
  if (*stat_) {
    if (json_) {
      json states = json::object();
      for (const auto& [state, cb] : by_state) states[state] = {{"objects", cb.first}, {"bytes", cb.second}};
      larder_tool::print_json({{"store", heap_}, {"objects", stats.objects}, {"bytes", stats.bytes},
                               {"capacity", stats.capacity}, {"referenced", referenced}, {"by_state", states},
                               {"clients", stats.clients}, {"evictions_by_this_handle", stats.evictions}});
    } else {
      std::printf("objects     %zu (%zu referenced)\nbytes       %s\ncapacity    %s\nclients     %zu\n",
                  stats.objects, referenced, human_size(stats.bytes).c_str(),
                  stats.capacity == 0 ? "the heap's" : human_size(stats.capacity).c_str(), stats.clients);
      for (const auto& [state, cb] : by_state)
        std::printf("  %-9s %zu objects, %s\n", state.c_str(), cb.first, human_size(cb.second).c_str());
    }
    (void)s.close();
    return larder_tool::kExitOk;
  }
  // info
  std::vector<larder::client_info> processes = s.owner().clients();
  if (json_) {
    json list = json::array();
    for (const larder::client_info& c : processes)
      if (!c.self) list.push_back({{"client", c.client}, {"pid", c.pid}, {"alive", c.alive}});
    larder_tool::print_json({{"store", heap_},
                             {"format", std::to_string(stats.format_major) + "." + std::to_string(stats.format_minor)},
                             {"objects", stats.objects}, {"bytes", stats.bytes}, {"capacity", stats.capacity},
                             {"clients", stats.clients}, {"processes", list}});
  } else {
    std::printf("store       %s\nformat      %u.%u\nobjects     %zu\nbytes       %s\ncapacity    %s\n"
                "clients     %zu (this one included)\n",
                printable(heap_).c_str(), stats.format_major, stats.format_minor, stats.objects,
                human_size(stats.bytes).c_str(), stats.capacity == 0 ? "the heap's" : human_size(stats.capacity).c_str(),
                stats.clients);
    for (const larder::client_info& c : processes)
      if (!c.self) std::printf("  process %d (heap client %u)%s\n", c.pid, c.client, c.alive ? "" : ", dead");
  }
  (void)s.close();
  return larder_tool::kExitOk;
}
