#include "http/server.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/unique_fd.h"
#include "http/client_address.h"
#include "http/problem.h"

namespace songd::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

/// Runs `f` as a coroutine whose only state is its parameter. Callers pass lambdas that
/// capture only trivially destructible values (pointers, numbers): GCC 12 may destroy a
/// temporary inside a co_await expression twice, which a shared_ptr capture does not survive.
template <class F>
awaitable<std::invoke_result_t<F&>> Call(F f) {
    co_return f();
}

namespace {
struct LiveWaker;
}  // namespace

struct Server::Impl {
    /// Runs blocking work on a pool and resumes on the caller's executor with its result.
    template <class F>
    awaitable<std::invoke_result_t<F&>> OnPool(F f, net::thread_pool& pool) {
        co_return co_await net::co_spawn(pool, Call(std::move(f)), net::use_awaitable);
    }
    template <class F>
    awaitable<std::invoke_result_t<F&>> OnPool(F f) {
        return OnPool(std::move(f), blocking);
    }

    const core::Config& config;
    Api& api;
    ServerLimits limits;
    std::atomic<bool> stopping{false};
    std::atomic<int> in_flight{0};
    std::atomic<uint16_t> bound_port{0};

    /// MAX_CONNECTIONS as resolved at Listen (the open-file limit when it is 0).
    int max_connections = 1;
    std::atomic<int> open_connections{0};
    std::atomic<int> refusing{0};  ///< 503 answers being written now
    std::atomic<int64_t> last_refusal_log_ms{0};
    /// ShedOne's own: a 503 logged just before must not hide that descriptors ran out.
    std::atomic<int64_t> last_shed_log_ms{0};
    std::mutex per_ip_mutex;
    std::unordered_map<std::string, int> per_ip;  ///< open connections by peer address

    /// A connection waiting for its next request, in `idle_` until the request's first bytes
    /// come or the read timeout passes. One sweeper enforces every idle timeout, so an idle
    /// connection holds no timer, no pending read and no buffer: only its frame and a wait
    /// for readability (650 bytes less each than a pending read with its timer and buffer).
    struct IdleWait {
        Impl* owner = nullptr;
        IdleWait* prev = nullptr;
        IdleWait* next = nullptr;
        std::chrono::steady_clock::time_point deadline;
        int fd = -1;
        bool linked = false;
        bool timed_out = false;  ///< the sweeper shut the connection down
        ~IdleWait() {
            if (owner) owner->UnwatchIdle(*this);
        }
    };
    std::mutex idle_mutex;
    IdleWait* idle_head = nullptr;  ///< oldest first: every deadline is now + the same timeout
    IdleWait* idle_tail = nullptr;
    void WatchIdle(IdleWait& wait);
    /// True when the sweeper timed the connection out.
    bool UnwatchIdle(IdleWait& wait);
    void UnlinkIdleLocked(IdleWait& wait);
    awaitable<void> SweepIdle();
    // Declared after the state above: destroying the context destroys the sessions' frames
    // still pending, whose destructors release their per-address count and idle entry.
    net::io_context ioc;
    net::thread_pool blocking{8};
    /// Handlers that may wait on Stripe or S3 (Run::kRemote). Their threads mostly wait on
    /// the network, so there are more of them.
    net::thread_pool remote_pool{16};
    tcp::acceptor acceptor{ioc};

    Impl(const core::Config& c, Api& a, ServerLimits l)
        : config(c), api(a), limits(l), ioc(c.io_threads) {}

    /// Counts a new connection in, or returns why it is refused (empty: admitted).
    /// `per_ip_counted` says whether the peer's own count was raised (trusted proxies and a
    /// cap of 0 are not counted).
    std::string Admit(const std::string& peer, bool& per_ip_counted);
    void Release(const std::string& peer, bool per_ip_counted);

    awaitable<void> Accept();
    /// Out of descriptors: frees the spare one, accepts the oldest waiting connection and
    /// closes it at once (the client sees a close, not a connection stuck in the backlog),
    /// then takes the spare back.
    enum class Shed { kClosedOne, kNoneWaiting, kFailed };
    Shed ShedOne();
    core::UniqueFd spare_fd;  ///< /dev/null, held for ShedOne
    awaitable<void> Refuse(tcp::socket socket, std::string reason);
    awaitable<void> Session(tcp::socket socket, std::string peer, bool per_ip_counted);
    awaitable<bool> Exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                             const std::string& peer, int& served,
                             std::chrono::steady_clock::time_point opened);
    awaitable<bool> Write(beast::tcp_stream& stream, const Request& request, Response& response);
    awaitable<bool> WriteFile(beast::tcp_stream& stream, const std::string& head,
                              const FileBody& file);
    // Live answers (message.h): each runs on its own strand, where wake-ups are posted.
    awaitable<void> Hold(Response* response);
    /// The look a live answer is due for (a wake-up came, or its poll interval passed), run on
    /// the blocking pool; nullopt when none is due. Throws what the look throws.
    awaitable<std::optional<LiveStep>> LookIfDue(LiveAnswer& live, LiveWaker& waker,
                                                 std::chrono::steady_clock::time_point now,
                                                 std::chrono::steady_clock::time_point& next_look);
    awaitable<void> Stream(beast::tcp_stream* stream, Response* response);
    awaitable<bool> Send(beast::tcp_stream* stream, const std::string& bytes);
    /// The body with sendfile(2): true/false when it was sent/the connection must close,
    /// nullopt when sendfile cannot be used for this file (nothing was sent; read instead).
    awaitable<std::optional<bool>> SendFile(beast::tcp_stream& stream, const FileBody& file);
};

namespace {

/// Wakes a live answer's loop: a publisher posts to the loop's strand, which marks it dirty
/// and ends its timer wait.
struct LiveWaker {
    explicit LiveWaker(const net::any_io_executor& ex) : timer(ex) {}
    net::steady_timer timer;
    bool dirty = true;  ///< look at once
};

std::shared_ptr<void> SubscribeWaker(LiveAnswer& live, const std::shared_ptr<LiveWaker>& waker,
                                     const net::any_io_executor& ex) {
    if (!live.subscribe) return nullptr;
    std::weak_ptr<LiveWaker> weak = waker;
    return live.subscribe([weak, ex] {
        net::post(ex, [weak] {
            if (auto w = weak.lock()) {
                w->dirty = true;
                w->timer.cancel();
            }
        });
    });
}

}  // namespace

Server::Server(const core::Config& config, Api& api, ServerLimits limits)
    : impl_(std::make_unique<Impl>(config, api, limits)) {}

Server::~Server() {
    Shutdown();
    impl_->blocking.join();
    impl_->remote_pool.join();
}

void Server::Listen() {
    boost::system::error_code ec;
    auto address = net::ip::make_address(
        impl_->config.host == "localhost" ? "127.0.0.1" : impl_->config.host, ec);
    if (ec)
        throw core::Error(core::ErrorCode::kInternal,
                          "HOST " + impl_->config.host + ": " + ec.message());
    tcp::endpoint endpoint(address, static_cast<uint16_t>(impl_->config.port));
    auto& acc = impl_->acceptor;
    acc.open(endpoint.protocol(), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(endpoint, ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
        throw core::Error(core::ErrorCode::kInternal, "cannot listen on " + impl_->config.host +
                                                          ":" + std::to_string(impl_->config.port) +
                                                          ": " + ec.message());
    }
    impl_->bound_port = acc.local_endpoint().port();
    for (const auto& route : impl_->api.router().routes()) {
        impl_->limits.largest_body_limit =
            std::max(impl_->limits.largest_body_limit, route.body_limit);
    }
    // ShedOne accepts by hand: it must never block the I/O thread.
    acc.native_non_blocking(true, ec);
    impl_->spare_fd = core::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ResolveConnectionLimit();
    net::co_spawn(impl_->ioc, impl_->Accept(), net::detached);
    net::co_spawn(impl_->ioc, impl_->SweepIdle(), net::detached);
}

void Server::ResolveConnectionLimit() {
    // Every connection is a descriptor: raise the soft open-file limit to the hard one, and
    // keep a reserve below it for song files, the database and curl.
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        struct rlimit raised = rl;
        raised.rlim_cur = rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
    }
    const uint64_t soft = rl.rlim_cur == RLIM_INFINITY
                              ? uint64_t{1} << 20
                              : std::min<uint64_t>(rl.rlim_cur, uint64_t{1} << 20);
    const uint64_t reserve = std::min<uint64_t>(1024, std::max<uint64_t>(soft / 4, 32));
    const int budget = static_cast<int>(soft > reserve ? soft - reserve : 1);
    const auto& config = impl_->config;
    if (config.max_connections == 0) {
        impl_->max_connections = budget;
    } else if (config.max_connections > budget) {
        throw core::Error(core::ErrorCode::kInternal,
                          "invalid configuration: MAX_CONNECTIONS='" +
                              std::to_string(config.max_connections) + "': must be from 1 to " +
                              std::to_string(budget) + " (the open-file limit " +
                              std::to_string(soft) + " minus " + std::to_string(reserve) +
                              " kept for files, the database and curl); raise ulimit -n or "
                              "lower MAX_CONNECTIONS");
    } else {
        impl_->max_connections = config.max_connections;
    }
    core::LogEvent("info", "connection_limits",
                   {{"max_connections", std::to_string(impl_->max_connections)},
                    {"max_connections_per_ip", std::to_string(config.max_connections_per_ip)},
                    {"open_file_limit", std::to_string(soft)},
                    {"keepalive_max_requests", std::to_string(config.keepalive_max_requests)},
                    {"keepalive_max_seconds", std::to_string(config.keepalive_max_seconds)},
                    {"trusted_proxies", std::to_string(config.trusted_proxies.size())}});
}

int Server::max_connections() const { return impl_->max_connections; }

uint16_t Server::port() const { return impl_->bound_port; }

void Server::Run() {
    auto work = net::make_work_guard(impl_->ioc);
    std::vector<std::thread> threads;
    for (int i = 1; i < impl_->config.io_threads; ++i)
        threads.emplace_back([this] { impl_->ioc.run(); });
    impl_->ioc.run();
    for (auto& t : threads) t.join();
}

void Server::Shutdown() {
    if (impl_->stopping.exchange(true)) return;
    net::post(impl_->ioc, [this] {
        boost::system::error_code ec;
        impl_->acceptor.close(ec);
    });
    // In-flight requests finish; idle keep-alive connections are simply closed.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    while (impl_->in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    impl_->ioc.stop();
}

std::string Server::Impl::Admit(const std::string& peer, bool& per_ip_counted) {
    per_ip_counted = false;
    if (open_connections.load() >= max_connections) {
        return "the server has " + std::to_string(max_connections) +
               " connections open (MAX_CONNECTIONS)";
    }
    // Behind a trusted proxy every client shares its address: it is never capped per address.
    const int cap = config.max_connections_per_ip;
    if (cap > 0 && !IsTrusted(peer, config.trusted_proxies)) {
        std::lock_guard lock(per_ip_mutex);
        int& n = per_ip[peer];
        if (n >= cap) {
            return "this address has " + std::to_string(cap) +
                   " connections open (MAX_CONNECTIONS_PER_IP)";
        }
        ++n;
        per_ip_counted = true;
    }
    ++open_connections;
    api.context().metrics.connections_open = open_connections.load();
    return {};
}

void Server::Impl::Release(const std::string& peer, bool per_ip_counted) {
    --open_connections;
    api.context().metrics.connections_open = open_connections.load();
    if (!per_ip_counted) return;
    std::lock_guard lock(per_ip_mutex);
    auto it = per_ip.find(peer);
    if (it != per_ip.end() && --it->second <= 0) per_ip.erase(it);
}

awaitable<void> Server::Impl::Accept() {
    while (!stopping) {
        auto [ec, socket] = co_await acceptor.async_accept(kUseTuple);
        if (ec) {
            if (ec == net::error::operation_aborted || stopping) co_return;
            if (ec == net::error::no_descriptors || ec.value() == ENFILE) {
                const Shed shed = ShedOne();
                if (shed == Shed::kClosedOne) continue;  // closed cleanly; take the next one
                if (shed == Shed::kNoneWaiting) {
                    // Asio tries an accept before anyone is waiting, and Linux fails it
                    // with EMFILE all the same: wait for a client, then shed (or admit) it.
                    co_await acceptor.async_wait(tcp::acceptor::wait_read, kUseTuple);
                    continue;
                }
            }
            // Anything else: back off briefly instead of spinning.
            core::LogEvent("warning", "accept_failed", {{"error", ec.message()}});
            net::steady_timer timer(ioc, std::chrono::milliseconds(50));
            co_await timer.async_wait(kUseTuple);
            continue;
        }
        boost::system::error_code ep_ec;
        auto remote = socket.remote_endpoint(ep_ec);
        std::string peer = ep_ec ? "unknown" : remote.address().to_string();
        bool per_ip_counted = false;
        std::string refused = Admit(peer, per_ip_counted);
        if (!refused.empty()) {
            net::co_spawn(ioc, Refuse(std::move(socket), std::move(refused)), net::detached);
            continue;
        }
        net::co_spawn(ioc, Session(std::move(socket), std::move(peer), per_ip_counted),
                      net::detached);
    }
}

Server::Impl::Shed Server::Impl::ShedOne() {
    spare_fd = core::UniqueFd();
    const int fd =
        ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    const bool none_waiting = fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (fd >= 0) {
        ::close(fd);
        ++api.context().metrics.connections_refused;
    }
    spare_fd = core::UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    int64_t last = last_shed_log_ms.load();
    if (fd >= 0 && now_ms - last >= 10000 &&
        last_shed_log_ms.compare_exchange_strong(last, now_ms)) {
        core::LogEvent(
            "warning", "connections_refused",
            {{"reason", "out of file descriptors (EMFILE): closed at accept"},
             {"refused_total", std::to_string(api.context().metrics.connections_refused.load())}});
    }
    if (fd >= 0) return Shed::kClosedOne;
    return none_waiting ? Shed::kNoneWaiting : Shed::kFailed;
}

awaitable<void> Server::Impl::Refuse(tcp::socket socket, std::string reason) {
    auto& metrics = api.context().metrics;
    ++metrics.connections_refused;
    const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
    int64_t last = last_refusal_log_ms.load();
    if (now_ms - last >= 10000 && last_refusal_log_ms.compare_exchange_strong(last, now_ms)) {
        core::LogEvent("warning", "connections_refused",
                       {{"reason", reason},
                        {"refused_total", std::to_string(metrics.connections_refused.load())}});
    }
    // Under a flood the answers themselves would hold descriptors: past a few hundred in
    // flight, a refused connection is simply closed.
    if (refusing.load() >= 512) co_return;
    ++refusing;
    static const std::string kAnswer = [] {
        const std::string body =
            R"({"type":"about:blank","title":"Service Unavailable","status":503,)"
            R"("detail":"too many connections; retry later"})";
        return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/problem+json\r\n"
               "Retry-After: 1\r\nConnection: close\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    }();
    beast::tcp_stream stream(std::move(socket));
    stream.expires_after(std::chrono::seconds(2));
    auto [ec, n] = co_await net::async_write(stream, net::buffer(kAnswer), kUseTuple);
    if (!ec) {
        // Read what the client sent until it closes, its request head is in, or 1 s passes,
        // so our close is a FIN and not a reset that could discard the answer unread.
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.expires_after(std::chrono::seconds(1));
        char sink[512];
        std::string tail;
        for (;;) {
            auto [rec, got] = co_await stream.async_read_some(net::buffer(sink), kUseTuple);
            if (rec) break;
            tail.append(sink, got);
            if (tail.find("\r\n\r\n") != std::string::npos) break;
            if (tail.size() > 3) tail.erase(0, tail.size() - 3);
        }
    }
    --refusing;
}

namespace {

/// Target → path and query; false when the target is not origin-form or badly encoded.
bool ParseTarget(std::string_view target, Request& request) {
    if (target.empty() || target.front() != '/') return false;
    auto qpos = target.find('?');
    auto raw_path = target.substr(0, qpos);
    auto path = PercentDecode(raw_path, false);
    if (!path) return false;
    request.path = std::move(*path);
    if (qpos == std::string_view::npos) return true;
    std::string_view query = target.substr(qpos + 1);
    size_t pos = 0;
    while (pos <= query.size()) {
        size_t amp = query.find('&', pos);
        if (amp == std::string_view::npos) amp = query.size();
        std::string_view pair = query.substr(pos, amp - pos);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            auto key = PercentDecode(pair.substr(0, eq), true);
            auto value = eq == std::string_view::npos ? std::optional<std::string>("")
                                                      : PercentDecode(pair.substr(eq + 1), true);
            if (!key || !value) return false;
            request.query.emplace_back(std::move(*key), std::move(*value));
        }
        pos = amp + 1;
    }
    return true;
}

}  // namespace

void Server::Impl::WatchIdle(IdleWait& wait) {
    std::lock_guard lock(idle_mutex);
    wait.owner = this;
    wait.linked = true;
    wait.prev = idle_tail;
    wait.next = nullptr;
    (idle_tail ? idle_tail->next : idle_head) = &wait;
    idle_tail = &wait;
}

void Server::Impl::UnlinkIdleLocked(IdleWait& wait) {
    (wait.prev ? wait.prev->next : idle_head) = wait.next;
    (wait.next ? wait.next->prev : idle_tail) = wait.prev;
    wait.prev = wait.next = nullptr;
    wait.linked = false;
}

bool Server::Impl::UnwatchIdle(IdleWait& wait) {
    std::lock_guard lock(idle_mutex);
    if (wait.linked) UnlinkIdleLocked(wait);
    wait.owner = nullptr;
    return wait.timed_out;
}

awaitable<void> Server::Impl::SweepIdle() {
    net::steady_timer timer(ioc);
    while (!stopping) {
        timer.expires_after(std::chrono::milliseconds(250));
        auto [ec] = co_await timer.async_wait(kUseTuple);
        if (ec) co_return;
        const auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(idle_mutex);
        while (idle_head && idle_head->deadline <= now) {
            IdleWait& wait = *idle_head;
            UnlinkIdleLocked(wait);
            wait.timed_out = true;
            // The connection's wait completes (readable: end of stream) and it closes. Its
            // descriptor is still open: the session unwatches under this lock before closing.
            ::shutdown(wait.fd, SHUT_RDWR);
        }
    }
}

awaitable<void> Server::Impl::Session(tcp::socket socket, std::string peer, bool per_ip_counted) {
    struct Slot {
        Impl* impl;
        const std::string& peer;
        bool counted;
        ~Slot() { impl->Release(peer, counted); }
    } slot{this, peer, per_ip_counted};
    beast::tcp_stream stream(std::move(socket));
    // Synchronous reads and writes on this socket return would_block instead of waiting: the
    // idle wait below reads what is there without blocking the I/O thread.
    boost::system::error_code nb_ec;
    stream.socket().native_non_blocking(true, nb_ec);
    if (nb_ec) co_return;
    // A keep-alive connection ends after so many requests or so much time, so no client holds
    // one connection (and what it pins) for ever.
    const auto opened = std::chrono::steady_clock::now();
    int served = 0;
    beast::flat_buffer buffer;
    while (!stopping) {
        if (buffer.size() == 0) {
            // Idle: wait here until the next request's first bytes are readable, so an idle
            // connection holds this frame and one wait, not a buffer, a timer, a parser or a
            // request (tens of thousands of idle connections stay within a few kB each).
            buffer.shrink_to_fit();
            IdleWait idle;
            idle.fd = stream.socket().native_handle();
            idle.deadline = std::chrono::steady_clock::now() +
                            std::chrono::seconds(limits.read_timeout_seconds);
            WatchIdle(idle);
            auto [wec] = co_await stream.socket().async_wait(tcp::socket::wait_read, kUseTuple);
            if (UnwatchIdle(idle) || wec) break;
            // Readable: take what is there at once (non-blocking, no second trip through the
            // scheduler); nothing there after all (a spurious wake-up) waits again.
            boost::system::error_code ec;
            const size_t n = stream.socket().read_some(buffer.prepare(1024), ec);
            if (ec == net::error::would_block || ec == net::error::try_again) continue;
            if (ec) break;
            buffer.commit(n);
        }
        if (!co_await Exchange(stream, buffer, peer, served, opened)) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

/// One request and its answer on a connection whose buffer holds the first bytes of it;
/// false when the connection must close.
awaitable<bool> Server::Impl::Exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                       const std::string& peer, int& served,
                                       std::chrono::steady_clock::time_point opened) {
    const std::string& client = peer;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(limits.header_limit);
    // The route decides the limit once the request line is in (uploads take more than JSON):
    // until then the largest any route allows, so Beast does not refuse the header itself.
    parser.body_limit(std::max(limits.body_limit, limits.largest_body_limit));
    stream.expires_after(std::chrono::seconds(limits.read_timeout_seconds));
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, kUseTuple);
    const auto started = std::chrono::steady_clock::now();
    std::optional<Response> early;
    // The request line is parsed and routed once, as soon as it is in: the route decides the
    // body limit, and the same match is prepared below.
    Request request;
    bool target_ok = false;
    Router::Match match;
    if (!ec) {
        const auto& header = parser.get();
        request.method = std::string(header.method_string());
        request.target = std::string(header.target());
        target_ok = ParseTarget(request.target, request);
        if (target_ok) match = api.router().Find(request);
    }
    // The route's own limit (Beast has the request line even when it refused the header for
    // a Content-Length over the largest limit).
    auto route_body_limit = [&] {
        if (ec) {
            const auto& header = parser.get();
            Request probe;
            probe.method = std::string(header.method_string());
            if (!ParseTarget(std::string_view(header.target().data(), header.target().size()),
                             probe)) {
                return limits.body_limit;
            }
            return Api::BodyLimit(api.router().Find(probe), limits.body_limit);
        }
        return target_ok ? Api::BodyLimit(match, limits.body_limit) : limits.body_limit;
    };
    // A route that takes a large body (uploads) may refuse a wrong API key from the headers.
    auto refuse_before_body = [&]() -> std::optional<Response> {
        if (!target_ok) return std::nullopt;
        Request probe;
        probe.method = request.method;
        for (const auto& field : parser.get()) {
            probe.headers.emplace_back(std::string(field.name_string()),
                                       std::string(field.value()));
        }
        return api.RefuseBeforeBody(probe, match);
    };
    uint64_t body_limit = limits.body_limit;
    bool body_unread = false;  ///< answered before the body: the client may still be sending
    if (!ec) {
        auto& header = parser.get();
        body_limit = route_body_limit();
        // Refused by its Content-Length before a byte of the body is read; a chunked body
        // is cut off by the parser at the same limit.
        parser.body_limit(body_limit);
        if (parser.content_length() && *parser.content_length() > body_limit) {
            early = ProblemResponse(
                413, "the body is larger than " + std::to_string(body_limit) + " bytes");
            early->close = true;
            body_unread = true;
        } else if (body_limit > limits.body_limit && !parser.is_done() &&
                   beast::iequals(header[bhttp::field::expect], "100-continue") &&
                   (early = refuse_before_body())) {
            // The client waits for 100 Continue before sending its body, so answering now
            // saves reading an upload only to refuse it. The unsent body must not be taken
            // for the next request: the connection closes.
            early->close = true;
            body_unread = true;
        } else if (!parser.is_done()) {
            auto expect = header[bhttp::field::expect];
            if (beast::iequals(expect, "100-continue")) {
                bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, 11};
                stream.expires_after(std::chrono::seconds(limits.write_timeout_seconds));
                auto [wec, wn] = co_await bhttp::async_write(stream, cont, kUseTuple);
                if (wec) co_return false;
            }
            // A large body (an upload) gets time in proportion: at least 1 MB/s.
            const int64_t body_seconds = static_cast<int64_t>(body_limit / (1024 * 1024));
            stream.expires_after(
                std::chrono::seconds(std::max<int64_t>(limits.read_timeout_seconds, body_seconds)));
            auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, kUseTuple);
            ec = bec;
        }
    }
    if (ec) {
        if (ec == bhttp::error::body_limit) {
            body_unread = true;
            body_limit = route_body_limit();  // the start line is in before any field
            early = ProblemResponse(
                413, "the body is larger than " + std::to_string(body_limit) + " bytes");
        } else if (ec == bhttp::error::header_limit) {
            early = ProblemResponse(431, "the request line and headers are larger than " +
                                             std::to_string(limits.header_limit) + " bytes");
        } else if (ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category() &&
                   ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
            early = ProblemResponse(400, "malformed HTTP request: " + ec.message());
        } else {
            co_return false;  // end_of_stream is a normal close; timeouts and resets drop the
                              // client
        }
        early->close = true;
    }

    ++in_flight;
    request.id = NewRequestId();
    request.peer_address = client;
    request.client_address = client;
    Prepared prepared;
    Response response;
    bool keep_alive = false;
    if (early) {
        response = std::move(*early);
        request.method = ec ? "-" : std::string(parser.get().method_string());
        request.path = ec ? "-" : std::string(parser.get().target());
    } else {
        auto& msg = parser.get();
        request.headers.reserve(static_cast<size_t>(std::distance(msg.begin(), msg.end())));
        for (const auto& field : msg) {
            request.headers.emplace_back(std::string(field.name_string()),
                                         std::string(field.value()));
        }
        request.body = std::move(msg.body());
        request.client_address = ClientAddress(peer, request.headers, config.trusted_proxies);
        keep_alive = msg.keep_alive();
        if (!target_ok) {
            request.path = request.target.substr(0, 200);
            response = ProblemResponse(400, "the request target is not a valid path");
        } else {
            prepared = api.Prepare(request, match);
            std::optional<Response> from_memory;
            if (prepared.run != Run::kInline) from_memory = api.TryInline(request, prepared);
            if (from_memory) {
                response = std::move(*from_memory);
            } else if (prepared.run != Run::kInline) {
                try {
                    response = co_await OnPool(
                        [this, &request, &prepared] { return api.Execute(request, prepared); },
                        prepared.run == Run::kRemote ? remote_pool : blocking);
                } catch (const std::exception& e) {
                    response = ProblemResponse(500, e.what());  // Finish keeps it for the log
                }
            } else {
                response = api.Execute(request, prepared);
            }
            if (response.live && !response.live->stream) {
                co_await net::co_spawn(net::make_strand(ioc), Hold(&response), net::use_awaitable);
            }
        }
    }
    const auto answered = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(answered - started).count();
    api.Finish(request, prepared, response, seconds);
    ++served;
    const bool worn_out = served >= config.keepalive_max_requests ||
                          answered - opened >= std::chrono::seconds(config.keepalive_max_seconds);
    if (response.live && response.live->stream && request.method != "HEAD") {
        // A stream is not a request in flight: shutdown does not wait for it.
        --in_flight;
        co_await net::co_spawn(net::make_strand(ioc), Stream(&stream, &response),
                               net::use_awaitable);
        co_return false;
    }
    response.live.reset();
    keep_alive = keep_alive && !response.close && !stopping && !worn_out;
    response.close = !keep_alive;
    bool ok = co_await Write(stream, request, response);
    --in_flight;
    if (ok && body_unread) {
        // Closing with the rest of the body unread would reset the connection, and a reset
        // can discard our answer before the client reads it: half-close, then read and drop
        // what it still sends, for at most a second.
        boost::system::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
        stream.expires_after(std::chrono::seconds(1));
        std::vector<char> sink(64 * 1024);  // on the heap: not in every request's frame
        for (;;) {
            auto [rec, got] = co_await stream.async_read_some(net::buffer(sink), kUseTuple);
            if (rec) break;
        }
    }
    co_return ok&& keep_alive;
}

namespace {

/// The status line and header block of `response`, ending in the blank line. `length` is the
/// Content-Length to announce (none for 1xx, 204 and 304). Written by hand rather than through
/// Beast's fields and serializer: for a small cached answer those were 6-8% of the I/O
/// thread's time.
std::string ResponseHead(const Response& response, std::optional<uint64_t> length) {
    std::string head;
    size_t size = 64 + response.fixed_headers.size();
    for (const auto& [name, value] : response.headers) size += name.size() + value.size() + 4;
    head.reserve(size);
    head += "HTTP/1.1 ";
    head += std::to_string(response.status);
    head += ' ';
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(response.status));
    head.append(reason.data(), reason.size());
    head += "\r\n";
    for (const auto& [name, value] : response.headers) {
        head += name;
        head += ": ";
        const size_t at = head.size();
        head += value;
        // A value never ends the header early: CR and LF become spaces.
        for (size_t i = at; i < head.size(); ++i) {
            if (head[i] == '\r' || head[i] == '\n') head[i] = ' ';
        }
        head += "\r\n";
    }
    head += response.fixed_headers;
    if (response.close) head += "Connection: close\r\n";
    if (length) {
        head += "Content-Length: ";
        head += std::to_string(*length);
        head += "\r\n";
    }
    head += "\r\n";
    return head;
}

}  // namespace

awaitable<bool> Server::Impl::Write(beast::tcp_stream& stream, const Request& request,
                                    Response& response) {
    const bool head = request.method == "HEAD";
    const bool no_body = response.status == 304 || response.status == 204 || response.status < 200;
    stream.expires_after(std::chrono::seconds(limits.write_timeout_seconds));
    std::string text =
        ResponseHead(response, no_body ? std::nullopt : std::optional(response.BodySize()));
    if (response.file && !head && !no_body) {
        co_return co_await WriteFile(stream, text, *response.file);
    }
    if (head || no_body || response.body.empty()) {
        auto [ec, n] = co_await net::async_write(stream, net::buffer(text), kUseTuple);
        co_return !ec;
    }
    // Head and body go out together in one gathered send. Not joined into one string: a head
    // and body of 1 KiB or more is a "large" allocation to glibc, whose every request then
    // consolidated the allocator's fast bins (5% of the I/O thread at 80 000 requests/s).
    const std::array<net::const_buffer, 2> parts{net::buffer(text), net::buffer(response.body)};
    auto [ec, n] = co_await net::async_write(stream, parts, kUseTuple);
    co_return !ec;
}

awaitable<bool> Server::Impl::Send(beast::tcp_stream* stream, const std::string& bytes) {
    stream->expires_after(std::chrono::seconds(limits.write_timeout_seconds));
    auto [ec, n] = co_await net::async_write(*stream, net::buffer(bytes), kUseTuple);
    co_return !ec;
}

awaitable<std::optional<LiveStep>> Server::Impl::LookIfDue(
    LiveAnswer& live, LiveWaker& waker, std::chrono::steady_clock::time_point now,
    std::chrono::steady_clock::time_point& next_look) {
    if (!waker.dirty && now < next_look) co_return std::nullopt;
    waker.dirty = false;
    if (live.poll.count() > 0) next_look = now + live.poll;
    co_return co_await OnPool([look = &live.look] { return (*look)(); });
}

awaitable<void> Server::Impl::Hold(Response* response) {
    using Clock = std::chrono::steady_clock;
    const std::shared_ptr<LiveAnswer> live = response->live;
    auto ex = co_await net::this_coro::executor;
    auto waker = std::make_shared<LiveWaker>(ex);
    auto subscription = SubscribeWaker(*live, waker, ex);
    auto next_look = Clock::time_point::max();
    // A tick of at most a second: a shutdown answers held requests as they are.
    while (!stopping) {
        const auto now = Clock::now();
        std::optional<LiveStep> step;
        try {
            step = co_await LookIfDue(*live, *waker, now, next_look);
        } catch (const std::exception& e) {
            core::LogEvent("warning", "held_answer_look_failed", {{"error", e.what()}});
            break;
        }
        if (step) {
            if (step->answer) {
                *response = std::move(*step->answer);
                break;
            }
            continue;
        }
        if (now >= live->deadline) break;
        waker->timer.expires_at(
            std::min({live->deadline, next_look, now + std::chrono::seconds(1)}));
        co_await waker->timer.async_wait(kUseTuple);
    }
    response->live.reset();
}

awaitable<void> Server::Impl::Stream(beast::tcp_stream* stream, Response* response) {
    using Clock = std::chrono::steady_clock;
    const std::shared_ptr<LiveAnswer> live = response->live;
    auto ex = co_await net::this_coro::executor;
    auto waker = std::make_shared<LiveWaker>(ex);
    auto subscription = SubscribeWaker(*live, waker, ex);
    // The head by hand: no length, no chunking; the body ends when the connection closes.
    response->close = true;
    const std::string head = ResponseHead(*response, std::nullopt);
    if (!co_await Send(stream, head)) co_return;
    auto next_heartbeat = Clock::now() + live->heartbeat;
    auto next_look = Clock::time_point::max();
    while (!stopping) {
        const auto now = Clock::now();
        std::optional<LiveStep> step;
        try {
            step = co_await LookIfDue(*live, *waker, now, next_look);
        } catch (const std::exception& e) {
            core::LogEvent("warning", "event_stream_look_failed", {{"error", e.what()}});
            co_return;
        }
        if (step) {
            if (!step->bytes.empty()) {
                if (!co_await Send(stream, step->bytes)) co_return;
                next_heartbeat = Clock::now() + live->heartbeat;
            }
            if (step->done) co_return;
            continue;
        }
        if (now >= next_heartbeat) {
            // Also how a client that went away is noticed: the write fails.
            static const std::string kHeartbeat = ": heartbeat\n\n";
            if (!co_await Send(stream, kHeartbeat)) co_return;
            next_heartbeat = now + live->heartbeat;
            continue;
        }
        waker->timer.expires_at(std::min(next_heartbeat, next_look));
        co_await waker->timer.async_wait(kUseTuple);
    }
}

awaitable<bool> Server::Impl::WriteFile(beast::tcp_stream& stream, const std::string& head,
                                        const FileBody& file) {
    // Reads happen on the blocking pool, a chunk at a time: memory stays at one chunk.
    // The head goes out first, then the body bytes straight to the socket. The
    // handler opened the file and took its size from that descriptor, so a concurrent delete
    // cannot shorten what the header announced.
    if (!file.fd || !*file.fd) co_return false;
    boost::system::error_code ec;
    co_await net::async_write(stream, net::buffer(head),
                              net::redirect_error(net::use_awaitable, ec));
    if (ec) co_return false;
    if (auto sent = co_await SendFile(stream, file)) co_return *sent;
    constexpr size_t kChunk = 256 * 1024;
    std::vector<char> chunk(kChunk);
    uint64_t offset = file.offset;
    uint64_t remaining = file.length;
    while (remaining > 0) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(kChunk, remaining));
        const int fdnum = file.fd->get();
        char* data = chunk.data();
        ssize_t got = co_await OnPool([fdnum, data, want, offset] {
            return ::pread(fdnum, data, want, static_cast<off_t>(offset));
        });
        if (got <= 0) co_return false;  // the file shrank: close rather than send garbage
        offset += static_cast<uint64_t>(got);
        remaining -= static_cast<uint64_t>(got);
        stream.expires_after(std::chrono::seconds(limits.write_timeout_seconds));
        co_await net::async_write(stream, net::buffer(data, static_cast<size_t>(got)),
                                  net::redirect_error(net::use_awaitable, ec));
        if (ec) co_return false;
    }
    co_return true;
}

awaitable<std::optional<bool>> Server::Impl::SendFile(beast::tcp_stream& stream,
                                                      const FileBody& file) {
    // The kernel copies from the page cache to the socket: no user-space buffer, no pool hop
    // per chunk. The socket is non-blocking, so the I/O thread waits for room in an async
    // wait (with the write timeout) and never in sendfile.
    auto& socket = stream.socket();
    boost::system::error_code ec;
    socket.native_non_blocking(true, ec);
    if (ec) co_return std::nullopt;
    off_t offset = static_cast<off_t>(file.offset);
    uint64_t remaining = file.length;
    uint64_t since_yield = 0;
    bool sent_any = false;
    net::steady_timer timer(socket.get_executor());
    while (remaining > 0) {
        const size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, 1 << 20));
        const ssize_t n = ::sendfile(socket.native_handle(), file.fd->get(), &offset, want);
        if (n > 0) {
            sent_any = true;
            remaining -= static_cast<uint64_t>(n);
            since_yield += static_cast<uint64_t>(n);
            if (since_yield >= (8u << 20) && remaining > 0) {
                // A fast reader on loopback never makes the socket wait: let other
                // connections on this thread have a turn.
                since_yield = 0;
                co_await net::post(socket.get_executor(), net::use_awaitable);
            }
            continue;
        }
        if (n == 0) co_return false;  // the file shrank: close rather than send short
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
            timer.expires_after(std::chrono::seconds(limits.write_timeout_seconds));
            timer.async_wait([&socket](const boost::system::error_code& tec) {
                boost::system::error_code ignored;
                if (!tec) socket.cancel(ignored);  // the client stopped reading
            });
            auto [wec] = co_await socket.async_wait(tcp::socket::wait_write, kUseTuple);
            timer.cancel();
            if (wec) co_return false;
            continue;
        }
        if (!sent_any && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
            co_return std::nullopt;  // this file cannot be sent so: read it instead
        }
        co_return false;
    }
    co_return true;
}

}  // namespace songd::http
