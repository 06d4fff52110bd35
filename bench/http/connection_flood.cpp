// The connection-flood measurement (bench/http/README.md): against one running `songd serve`,
// 10 000 requests with distinct made-up methods, then N idle connections held open from many
// loopback source addresses, while /healthz latency is measured on a keep-alive connection and
// on fresh connections. Reports songd's RSS before and after, and how many connections were
// answered 503 over the cap. Loopback only.
//
//   songd_connection_flood --port 8000 --pid 1234 [--methods 10000] [--idle 20000]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int g_port = 0;

long ReadStatusKb(int pid, const char* field) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
    }
    return -1;
}

int Connect(const std::string& source) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
        ::close(fd);
        return -1;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(g_port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/// Sends `request` and reads one response (headers + Content-Length body); the status, or
/// 0 when the connection failed or closed first. `closed` says whether the server closed.
int Roundtrip(int fd, const std::string& request, std::string* body, bool* closed,
              int timeout_ms = 10000) {
    *closed = false;
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
        *closed = true;
        return 0;
    }
    std::string in;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    char buf[8192];
    while (Clock::now() < deadline) {
        auto end = in.find("\r\n\r\n");
        if (end != std::string::npos) {
            size_t length = 0;
            auto cl = in.find("Content-Length: ");
            if (cl != std::string::npos && cl < end) length = std::stoul(in.substr(cl + 16));
            if (in.size() >= end + 4 + length) {
                if (body) *body = in.substr(end + 4, length);
                if (in.find("Connection: close") != std::string::npos) *closed = true;
                return std::atoi(in.c_str() + 9);
            }
        }
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            *closed = true;
            return in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
        }
        in.append(buf, static_cast<size_t>(n));
    }
    *closed = true;
    return 0;
}

struct Latencies {
    std::mutex mutex;
    std::vector<double> ms;
    int ok = 0, refused = 0, failed = 0;
    void Add(int status, double millis) {
        std::lock_guard lock(mutex);
        ms.push_back(millis);
        if (status == 200) {
            ++ok;
        } else if (status == 503) {
            ++refused;
        } else {
            ++failed;
        }
    }
    void Print(const char* name) {
        std::lock_guard lock(mutex);
        std::sort(ms.begin(), ms.end());
        auto at = [&](double q) {
            return ms.empty() ? 0.0
                              : ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
        };
        std::printf(
            "%s: %zu probes, %d x 200, %d x 503, %d failed; p50 %.2f ms, p99 %.2f ms, max %.2f "
            "ms\n",
            name, ms.size(), ok, refused, failed, at(0.5), at(0.99), ms.empty() ? 0.0 : ms.back());
    }
};

const std::string kHealth = "GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n";

}  // namespace

int main(int argc, char** argv) {
    int pid = 0, methods = 10000, idle = 20000, holders = 2, sources_per_holder = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        int v = std::atoi(argv[i + 1]);
        if (a == "--port") g_port = v;
        if (a == "--pid") pid = v;
        if (a == "--methods") methods = v;
        if (a == "--idle") idle = v;
        if (a == "--holders") holders = v;
    }
    if (g_port == 0 || pid == 0) {
        std::fprintf(stderr, "usage: %s --port P --pid PID [--methods N] [--idle N]\n", argv[0]);
        return 2;
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);

    const long rss_start = ReadStatusKb(pid, "VmRSS:");
    std::printf("songd pid %d port %d; RSS at start %ld kB\n", pid, g_port, rss_start);

    // 1. Distinct made-up methods, on keep-alive connections (reconnecting when one wears out).
    auto started = Clock::now();
    int statuses[6] = {};
    int conn = -1;
    for (int i = 0; i < methods; ++i) {
        if (conn < 0) conn = Connect("127.0.0.1");
        char method[32];
        std::snprintf(method, sizeof method, "XMADEUP%05d", i);
        bool closed = false;
        int status =
            Roundtrip(conn, std::string(method) + " /healthz HTTP/1.1\r\nHost: bench\r\n\r\n",
                      nullptr, &closed);
        ++statuses[std::min(5, status / 100)];
        if (closed) {
            ::close(conn);
            conn = -1;
        }
    }
    if (conn >= 0) ::close(conn);
    const double methods_s = std::chrono::duration<double>(Clock::now() - started).count();
    const long rss_methods = ReadStatusKb(pid, "VmRSS:");
    std::printf("%d made-up methods in %.1f s: %d x 4xx, %d x 5xx, %d failed; RSS %ld kB\n",
                methods, methods_s, statuses[4], statuses[5], statuses[0], rss_methods);

    // 2. Latency probes, from before the flood to after it.
    Latencies keepalive, fresh;
    std::atomic<bool> stop{false};
    std::string metrics_text;
    std::thread prober([&] {
        int probe = Connect("127.0.0.1");
        int tick = 0;
        while (!stop) {
            if (probe < 0) probe = Connect("127.0.0.1");
            auto t0 = Clock::now();
            bool closed = false;
            int status = probe < 0 ? 0 : Roundtrip(probe, kHealth, nullptr, &closed);
            keepalive.Add(status,
                          std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            if (closed && probe >= 0) {
                ::close(probe);
                probe = -1;
            }
            if (++tick % 10 == 0) {  // a health checker that opens a connection per probe
                auto f0 = Clock::now();
                int fd = Connect("127.0.0.1");
                bool fclosed = false;
                int fstatus = fd < 0 ? 0 : Roundtrip(fd, kHealth, nullptr, &fclosed);
                fresh.Add(fstatus,
                          std::chrono::duration<double, std::milli>(Clock::now() - f0).count());
                if (fd >= 0) ::close(fd);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        if (probe >= 0) {
            bool closed = false;
            std::string body;
            Roundtrip(probe, "GET /api/v1/metrics HTTP/1.1\r\nHost: bench\r\n\r\n", &body, &closed);
            metrics_text = body;
            ::close(probe);
        }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));

    // 3. Idle connections, from several processes (each has its own descriptor limit) and
    // many loopback source addresses (under MAX_CONNECTIONS_PER_IP each).
    struct Holder {
        pid_t pid;
        int report;   // child → parent: counts
        int release;  // parent → child: close everything
    };
    std::vector<Holder> kids;
    const auto flood_started = Clock::now();
    for (int h = 0; h < holders; ++h) {
        int up[2], down[2];
        if (::pipe(up) != 0 || ::pipe(down) != 0) return 1;
        pid_t child = ::fork();
        if (child == 0) {
            ::close(up[0]);
            ::close(down[1]);
            const int count = idle / holders;
            std::vector<int> fds;
            fds.reserve(static_cast<size_t>(count));
            int connect_failed = 0;
            for (int i = 0; i < count; ++i) {
                const int source = h * sources_per_holder + i % sources_per_holder;
                std::string addr = "127.0." + std::to_string(1 + source / 250) + "." +
                                   std::to_string(1 + source % 250);
                int fd = Connect(addr);
                if (fd < 0) {
                    ++connect_failed;
                } else {
                    fds.push_back(fd);
                }
            }
            // Refused connections were answered at once and closed: count them.
            std::this_thread::sleep_for(std::chrono::seconds(2));
            int refused = 0, dropped = 0, open = 0;
            char buf[1024];
            for (int fd : fds) {
                pollfd p{fd, POLLIN, 0};
                if (::poll(&p, 1, 0) > 0) {
                    ssize_t n = ::recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT);
                    if (n > 12 && std::strncmp(buf, "HTTP/1.1 503", 12) == 0) {
                        ++refused;
                    } else {
                        ++dropped;
                    }
                } else {
                    ++open;
                }
            }
            char line[128];
            int len = std::snprintf(line, sizeof line, "%d %d %d %d\n", open, refused, dropped,
                                    connect_failed);
            (void)!::write(up[1], line, static_cast<size_t>(len));
            char c;
            (void)!::read(down[0], &c, 1);  // hold until the parent has measured
            _exit(0);
        }
        ::close(up[1]);
        ::close(down[0]);
        kids.push_back({child, up[0], down[1]});
    }
    int open = 0, refused = 0, dropped = 0, connect_failed = 0;
    for (auto& k : kids) {
        char line[128] = {};
        ssize_t n = ::read(k.report, line, sizeof line - 1);
        int o = 0, r = 0, d = 0, f = 0;
        if (n > 0 && std::sscanf(line, "%d %d %d %d", &o, &r, &d, &f) == 4) {
            open += o;
            refused += r;
            dropped += d;
            connect_failed += f;
        }
    }
    const double flood_s = std::chrono::duration<double>(Clock::now() - flood_started).count();
    std::this_thread::sleep_for(std::chrono::seconds(2));  // idle, held: what it costs at rest
    const long rss_held = ReadStatusKb(pid, "VmRSS:");
    const long rss_peak = ReadStatusKb(pid, "VmHWM:");
    std::printf(
        "%d idle connections attempted in %.1f s (incl. 2 s settle): %d held open, %d answered 503 "
        "and closed, %d closed otherwise, %d connect failures\n",
        idle, flood_s, open, refused, dropped, connect_failed);
    stop = true;
    prober.join();
    for (auto& k : kids) {
        (void)!::write(k.release, "x", 1);
        ::waitpid(k.pid, nullptr, 0);
    }
    std::printf(
        "songd RSS: start %ld kB, after methods %ld kB, with the connections held %ld kB, "
        "peak %ld kB\n",
        rss_start, rss_methods, rss_held, rss_peak);
    keepalive.Print("/healthz on a keep-alive connection");
    fresh.Print("/healthz on a fresh connection");
    for (const char* name :
         {"\nsongd_http_connections_open ", "\nsongd_http_connections_refused_total ",
          "\nsongd_http_requests_total{method=\"OTHER\""}) {
        auto at = metrics_text.find(name);
        if (at != std::string::npos) {
            ++at;
            std::printf("metrics: %s\n",
                        metrics_text.substr(at, metrics_text.find('\n', at) - at).c_str());
        }
    }
    size_t series = 0;
    for (size_t p = 0;
         (p = metrics_text.find("songd_http_requests_total{", p)) != std::string::npos; ++p) {
        ++series;
    }
    std::printf("metrics: %zu request series in /metrics (%zu bytes)\n", series,
                metrics_text.size());
    return 0;
}
