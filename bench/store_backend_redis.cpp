// The Redis backend of the store benchmark: a redis-server started with a
// temporary configuration (a Unix socket, no TCP port, no persistence) and
// hiredis clients, plain (one round trip per operation) or pipelined
// (operations queued and their answers read `depth` at a time).
#include <hiredis/hiredis.h>

#include <cstdarg>
#include <deque>
#include <fstream>
#include <string_view>
#include <vector>

#include "server_process.hpp"
#include "store_backend.hpp"
#include "ycsb.hpp"

namespace larder_bench {
namespace {

using reply_ptr = std::unique_ptr<redisReply, decltype(&freeReplyObject)>;

// What an answer must look like to count as done.
enum class expect : std::uint8_t { ok, value, values };

class redis_client final : public store_client {
 public:
  redis_client(redisContext* context, unsigned depth) : context_(context), depth_(depth) {}
  ~redis_client() override { redisFree(context_); }

  bool put(std::uint64_t key, value_view value) override {
    const std::string name = ycsb::key_name(key);
    return done(reply_ptr(command("SET %b %b", name.data(), name.size(), value.data(), value.size()),
                          freeReplyObject),
                expect::ok);
  }
  bool get(std::uint64_t key) override {
    const std::string name = ycsb::key_name(key);
    return done(reply_ptr(command("GET %b", name.data(), name.size()), freeReplyObject), expect::value);
  }
  bool remove(std::uint64_t key) override {
    const std::string name = ycsb::key_name(key);
    reply_ptr r(command("DEL %b", name.data(), name.size()), freeReplyObject);
    const bool ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (!ok) miss();
    return ok;
  }

  void insert(std::uint64_t key, value_view value) override { set(key, value); }
  void update(std::uint64_t key, value_view value) override { set(key, value); }
  void read(std::uint64_t key) override {
    const std::string name = ycsb::key_name(key);
    queue({"GET", std::string_view(name)}, expect::value);
  }
  void scan(std::uint64_t first, std::uint32_t count) override {
    std::vector<std::string> names;
    for (std::uint32_t i = 0; i < count; ++i) names.push_back(ycsb::key_name(first + i));
    std::vector<std::string_view> args{"MGET"};
    args.insert(args.end(), names.begin(), names.end());
    queue(args, expect::values);
  }
  void sync() override {
    while (!pending_.empty()) answer();
  }

 private:
  redisReply* command(const char* format, ...) {
    va_list ap;
    va_start(ap, format);
    void* r = redisvCommand(context_, format, ap);
    va_end(ap);
    return static_cast<redisReply*>(r);
  }

  void set(std::uint64_t key, value_view value) {
    const std::string name = ycsb::key_name(key);
    queue({"SET", std::string_view(name), std::string_view(reinterpret_cast<const char*>(value.data()), value.size())},
          expect::ok);
  }

  // Sends one command; without pipelining waits for its answer at once.
  void queue(const std::vector<std::string_view>& args, expect what) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string_view a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    if (depth_ <= 1) {
      done(reply_ptr(static_cast<redisReply*>(
                         redisCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data())),
                     freeReplyObject),
           what);
      return;
    }
    redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(), lengths.data());
    pending_.push_back(what);
    if (pending_.size() >= depth_) sync();
  }

  void answer() {
    void* r = nullptr;
    if (redisGetReply(context_, &r) != REDIS_OK) r = nullptr;
    done(reply_ptr(static_cast<redisReply*>(r), freeReplyObject), pending_.front());
    pending_.pop_front();
  }

  // Checks an answer; a value is copied out, as a client using it would.
  bool done(const reply_ptr& r, expect what) {
    bool ok = false;
    if (r && what == expect::ok) ok = r->type == REDIS_REPLY_STATUS;
    if (r && what == expect::value && r->type == REDIS_REPLY_STRING) {
      buffer_.assign(r->str, r->str + r->len);
      ok = true;
    }
    if (r && what == expect::values && r->type == REDIS_REPLY_ARRAY) {
      for (size_t i = 0; i < r->elements; ++i) {
        const redisReply* e = r->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;
        buffer_.assign(e->str, e->str + e->len);
        ok = true;
      }
    }
    if (!ok) miss();
    return ok;
  }

  redisContext* context_;
  unsigned depth_;
  std::deque<expect> pending_;
  std::vector<char> buffer_;
};

class redis_service final : public store_service {
 public:
  explicit redis_service(unsigned depth) : depth_(depth) {}

  std::string name() const override { return depth_ > 1 ? "redis-pipelined" : "redis"; }
  std::string version() const override { return command_output_line("redis-server --version"); }

  std::string start(const std::filesystem::path& dir) override {
    socket_ = dir / "redis.sock";
    std::filesystem::remove(socket_);
    const std::filesystem::path config = dir / "redis.conf";
    std::ofstream(config) << "port 0\nunixsocket " << socket_.string() << "\nunixsocketperm 700\n"
                          << "save \"\"\nappendonly no\ndaemonize no\ndir " << dir.string() << "\n";
    if (std::string error = server_.start({"redis-server", config.string()}, dir / "redis.log"); !error.empty()) {
      return error;
    }
    return server_.wait_until([this] { return unix_socket_accepts(socket_); }, std::chrono::seconds(10));
  }

  std::unique_ptr<store_client> connect(std::string* error) override {
    redisContext* context = redisConnectUnix(socket_.c_str());
    if (context == nullptr || context->err != 0) {
      *error = "cannot connect to redis at " + socket_.string() + (context ? ": " + std::string(context->errstr) : "");
      if (context != nullptr) redisFree(context);
      return nullptr;
    }
    return std::make_unique<redis_client>(context, depth_);
  }

  void stop() override { server_.stop(); }
  bool pipelined() const override { return depth_ > 1; }

 private:
  unsigned depth_;
  std::filesystem::path socket_;
  server_process server_;
};

}  // namespace

std::unique_ptr<store_service> make_redis_service(unsigned pipeline_depth, std::string* why) {
  if (command_output_line("command -v redis-server").empty()) {
    *why = "redis-server is not installed (scripts/install-deps.sh --bench)";
    return nullptr;
  }
  return std::make_unique<redis_service>(pipeline_depth);
}

}  // namespace larder_bench
