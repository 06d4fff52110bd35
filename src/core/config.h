#pragma once
/// @file
/// Service configuration: every variable of DESIGN.md, read from the environment and an
/// env file, validated once at start.
///
///   auto env = core::ReadEnvironment(".env");        // file values, real environment wins
///   core::Config config = core::LoadConfig(env);      // throws core::ConfigError
///
/// A bad value fails the whole load with one line naming the variable, the value and what
/// is allowed, so an operator sees the mistake before the service takes traffic.

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace songd::core {

/// @brief A configuration value that is not allowed; `what()` is the one-line message.
class ConfigError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

using Environment = std::map<std::string, std::string>;

/// @brief An IPv4 or IPv6 network (TRUSTED_PROXIES). IPv4 is kept as IPv4-mapped IPv6
/// (::ffff:a.b.c.d, prefix + 96), so one comparison covers both families.
struct IpNetwork {
    std::array<unsigned char, 16> address{};
    int prefix = 128;
    /// True when `ip` (textual IPv4 or IPv6, IPv4-mapped IPv6 included) lies in the network.
    bool Contains(const std::string& ip) const;
};

/// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or `addr/n` (n in range for the family);
/// nullopt for anything else.
std::optional<IpNetwork> ParseIpNetwork(const std::string& text);

/// @brief The validated configuration. Field names follow the variables.
struct Config {
    // HTTP
    std::string host = "0.0.0.0";
    int port = 8000;
    std::string api_prefix = "/api/v1";
    bool debug = false;
    int io_threads = 1;
    int status_cache_entries = 100000;  ///< status documents kept in memory; 0: no cache
    /// How long a cached status document may be served without rereading the store: bounds
    /// what changes made elsewhere (other nodes, `songd cleanup`) take to show. -1: 1000 ms
    /// on PostgreSQL (several nodes), 60000 ms on SQLite (one node).
    int status_cache_max_age_ms = -1;
    int http_read_timeout_seconds = 15;  ///< a client that sends nothing is dropped after this
    std::string api_key;                 ///< empty: no key required
    std::vector<std::string> cors_origins{"*"};
    bool enable_rate_limit = true;
    int rate_limit_per_hour = 10;
    bool enable_metrics = true;
    std::string metrics_path = "/api/v1/metrics";

    // Logging
    std::string log_level = "info";   ///< trace|debug|info|warning|error|critical
    std::string log_format = "json";  ///< json|text
    bool access_log = true;           ///< one "request" line per request (at LOG_LEVEL info)
    int access_log_buffer = 65536;    ///< access log lines waiting for the writer; more: dropped

    // Generation
    std::string device = "cpu";
    std::string engine = "synth";  ///< synth|tone|diffrhythm
    int workers = 2;
    int generation_timeout_seconds = 2400;
    int max_batch_size = 4;
    int default_audio_length = 95;
    int max_audio_length = 285;
    int preview_seconds = 30;
    std::string soundfont;  ///< empty: best installed
    std::string diffrhythm_home;
    std::string diffrhythm_python = "python3";
    std::string diffrhythm_mode = "worker";  ///< worker|cli
    std::vector<int> diffrhythm_gpus;
    std::string diffrhythm_device = "auto";        ///< DEVICE when set, else upstream's choice
    std::vector<int> diffrhythm_preload;           ///< lengths whose model loads at start
    int diffrhythm_load_timeout_seconds = 600;
    bool diffrhythm_chunked = true;
    /// Test engine `tone` only: spread the render over this many ms, and inject a fault
    /// (none|nan|silence|error) so tests can watch in-flight jobs and failure paths.
    int tone_render_ms = 0;
    std::string tone_fault = "none";

    // Storage
    std::filesystem::path output_dir = "./output";
    std::string database_url = "sqlite:./data/songd.db";

    // Payment
    std::string stripe_secret_key;
    std::string stripe_publishable_key;
    std::string stripe_webhook_secret;
    std::string stripe_api_base = "https://api.stripe.com";
    int stripe_timeout_seconds = 10;  ///< STRIPE_TIMEOUT: per attempt, connect included
    bool require_payment = false;     ///< REQUIRE_PAYMENT_FOR_GENERATION
    int price_cents = 99;
    std::string price_currency = "usd";

    // S3
    bool s3_enabled = false;
    std::string s3_bucket;
    std::string s3_region = "us-east-1";
    std::string s3_access_key;
    std::string s3_secret_key;
    std::string s3_session_token;
    std::string s3_prefix = "songs/";
    std::string s3_endpoint;  ///< empty: AWS
    bool s3_force_path_style = false;
    int s3_presign_expires = 3600;
    int s3_reconcile_seconds = 30;  ///< how often songs that did not reach S3 are retried

    // HTTP connection limits and proxies
    /// MAX_CONNECTIONS: open client connections; 0 = derived at listen time from the
    /// RLIMIT_NOFILE soft limit minus a reserve for files, the database and curl.
    int max_connections = 0;
    int max_connections_per_ip = 256;   ///< MAX_CONNECTIONS_PER_IP; 0 = no per-address cap
    int keepalive_max_requests = 1000;  ///< HTTP_KEEPALIVE_MAX_REQUESTS, then Connection: close
    int keepalive_max_seconds = 600;    ///< HTTP_KEEPALIVE_MAX_SECONDS, then Connection: close
    std::vector<IpNetwork> trusted_proxies;  ///< TRUSTED_PROXIES; empty: trust no proxy
    int max_event_streams = 1000;  ///< MAX_EVENT_STREAMS: open job event streams; then 503

    // Retention
    int file_retention_days = 30;
    bool cleanup_enabled = true;
    int cleanup_interval_hours = 24;

    // Client webhooks (webhook_url on generate; webhooks/webhook_sender.h)
    std::string webhook_secret;          ///< WEBHOOK_SECRET: whsec_<base64 key>; empty: no webhooks
    bool webhook_allow_private = false;  ///< WEBHOOK_ALLOW_PRIVATE: loopback/private URLs allowed
    int webhook_timeout_seconds = 5;     ///< WEBHOOK_TIMEOUT_SECONDS: per delivery attempt
    int webhook_retry_base_ms = 5000;  ///< WEBHOOK_RETRY_BASE_MS: first retry delay, then doubling
    int webhook_concurrency = 8;       ///< WEBHOOK_CONCURRENCY: deliveries in flight per node

    // Payment safety and pricing by length
    /// @brief One step of PRICE_TIERS: songs up to `max_seconds` long cost `cents`.
    struct PriceTier {
        int max_seconds = 0;
        int64_t cents = 0;
    };
    int paid_retention_days = 30;  ///< PAID_RETENTION_DAYS: files kept at least this after payment
    /// STRIPE_PAYMENT_METHOD_TYPES: only methods that confirm at once (no SEPA/ACH by default).
    std::vector<std::string> stripe_payment_method_types{"card"};
    std::vector<PriceTier> price_tiers;  ///< PRICE_TIERS, ascending; empty: PRICE_CENTS for all
    /// The price of a song of `audio_length` seconds: its tier, or PRICE_CENTS without tiers.
    int64_t PriceCentsFor(int audio_length) const;

    // Web page
    bool web_enabled = true;                                  ///< WEB_ENABLED: the page at /
    std::string stripe_js_url = "https://js.stripe.com/v3/";  ///< STRIPE_JS_URL

    /// Path of the SQLite database when `database_url` is SQLite, else empty.
    std::filesystem::path SqlitePath() const;
    bool IsPostgres() const;
};

/// Parses an env file (KEY=VALUE, `#` comments, optional `export `, single or double quotes).
/// Throws ConfigError naming the file and line of a malformed line.
Environment ReadEnvFile(const std::filesystem::path& path);

/// The process environment layered over `env_file` (when given and present); the
/// environment wins. `env_file_required` makes a missing file an error.
Environment ReadEnvironment(const std::optional<std::filesystem::path>& env_file,
                            bool env_file_required);

/// Validates every variable; unknown variables are ignored.
Config LoadConfig(const Environment& env);

/// Every variable LoadConfig reads, section by section in the order it reads them. Recorded
/// by the section loaders themselves, so it cannot drift from what is read.
const std::vector<std::string>& ConfigVariableNames();

/// True for variables whose values must never be printed (marked where they are read).
bool IsSecretVariable(const std::string& name);

}  // namespace songd::core
