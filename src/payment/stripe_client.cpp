#include "payment/stripe_client.h"

#include <algorithm>
#include <boost/json.hpp>
#include <stdexcept>

#include "core/error.h"
#include "core/log.h"
#include "core/text.h"

namespace songd::payment {
namespace {

namespace json = boost::json;

// Pinned so a change of the account's default API version cannot change the shapes we parse.
constexpr const char* kStripeVersion = "2024-06-20";
// Longest Retry-After we pass on from Stripe to our own clients.
constexpr int kMaxRetryAfterSeconds = 300;

/// Stripe's error document, `{"error":{"type","code","message"}}`; empty fields when absent.
struct StripeError {
    std::string type;
    std::string code;
    std::string message;
};

StripeError ParseStripeError(const std::string& body) {
    StripeError error;
    boost::system::error_code ec;
    json::value value = json::parse(body, ec);
    if (ec || !value.is_object()) return error;
    const auto* inner = value.get_object().if_contains("error");
    if (inner == nullptr || !inner->is_object()) return error;
    auto text = [&](const char* name) -> std::string {
        const auto* member = inner->get_object().if_contains(name);
        return member != nullptr && member->is_string() ? std::string(member->get_string()) : "";
    };
    error.type = text("type");
    error.code = text("code");
    error.message = text("message");
    return error;
}

std::string TransportProblem(const net::TransportError& error) {
    switch (error.failure()) {
        case net::TransportFailure::kConnect:
            return "could not connect";
        case net::TransportFailure::kTimeout:
            return "timed out";
        case net::TransportFailure::kSend:
            return "connection broke while sending";
        case net::TransportFailure::kReceive:
            return "connection broke before an answer";
        case net::TransportFailure::kRequest:
            return "request unusable";
        case net::TransportFailure::kOther:
            return "transfer failed";
    }
    return "transfer failed";
}

/// One attempt: Stripe's answer when it is final, or why another attempt may help.
struct Attempt {
    std::optional<net::Response> answer;  ///< 2xx, or a refusal that retrying cannot change
    std::string problem;                  ///< otherwise: what went wrong
    std::optional<int> retry_after;       ///< Stripe's Retry-After, seconds
    bool may_retry = false;
};

std::optional<int> ParseRetryAfterSeconds(const net::Response& response) {
    auto header = response.Header("retry-after");
    if (!header) return std::nullopt;
    try {
        size_t used = 0;
        const int seconds = std::stoi(*header, &used);
        if (used != header->size() || seconds < 0) return std::nullopt;
        return std::min(seconds, kMaxRetryAfterSeconds);
    } catch (const std::exception&) {
        return std::nullopt;  // an HTTP-date: rare from Stripe, and our own default is fine
    }
}

std::string TrimSlash(std::string base) {
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
}

}  // namespace

StripeClientOptions StripeClientOptions::FromConfig(const core::Config& config) {
    StripeClientOptions options;
    options.api_base = config.stripe_api_base;
    options.secret_key = config.stripe_secret_key;
    options.request_timeout = std::chrono::seconds(config.stripe_timeout_seconds);
    options.connect_timeout = std::min(options.connect_timeout, options.request_timeout);
    return options;
}

std::string IntentIdempotencyKey(const std::string& job_id, int64_t amount,
                                 const std::string& currency, const std::string& renewal) {
    std::string key = "songd-intent-" + job_id + "-" + std::to_string(amount) + currency;
    if (!renewal.empty()) key += "-after-" + renewal;
    return key;
}

StripeClient::StripeClient(StripeClientOptions options)
    : options_(std::move(options)), retrier_(options_.retry) {
    options_.api_base = TrimSlash(options_.api_base);
}

net::Response StripeClient::Call(const char* operation, net::Request request) {
    request.timeouts = {.connect = options_.connect_timeout, .total = options_.request_timeout};
    request.headers.emplace_back("Authorization", "Bearer " + options_.secret_key);
    request.headers.emplace_back("Stripe-Version", kStripeVersion);
    request.headers.emplace_back("Accept", "application/json");
    request.headers.emplace_back("User-Agent", std::string("songd/") + SONGD_VERSION);

    auto attempt = [&](int) {
        Attempt outcome;
        try {
            net::Response response = http_.Send(request);
            if (response.status != 429 && response.status < 500) {
                outcome.answer = std::move(response);
                return outcome;
            }
            outcome.problem = "answered HTTP " + std::to_string(response.status);
            outcome.retry_after = ParseRetryAfterSeconds(response);
            // Stripe says so when a retry cannot help (e.g. an idempotent request in flight
            // that failed for good).
            outcome.may_retry = response.Header("stripe-should-retry") != "false";
        } catch (const net::TransportError& error) {
            if (error.failure() == net::TransportFailure::kRequest) {
                throw core::Error(core::ErrorCode::kInternal,
                                  std::string("Stripe ") + operation +
                                      " request is unusable: check STRIPE_API_BASE");
            }
            // Any other transport failure may pass (a TLS hiccup included): Stripe's answers
            // are idempotent, so another attempt is cheap.
            outcome.problem = TransportProblem(error);
            outcome.may_retry = true;
        }
        return outcome;
    };
    net::RetryRules<Attempt> rules{
        .retryable = [](const Attempt& outcome) { return outcome.may_retry; },
        .min_delay =
            [&](const Attempt& outcome) {
                return outcome.retry_after
                           ? std::min(std::chrono::milliseconds(*outcome.retry_after * 1000),
                                      options_.retry.max_delay)
                           : std::chrono::milliseconds(0);
            },
        .before_retry =
            [&](const Attempt& outcome, int attempt_number, std::chrono::milliseconds delay) {
                core::LogEvent("warning", "stripe_retry",
                               {{"operation", operation},
                                {"attempt", std::to_string(attempt_number)},
                                {"problem", outcome.problem},
                                {"delay_ms", std::to_string(delay.count())}});
            }};
    auto [outcome, attempts] = retrier_.Run<Attempt>(attempt, rules);
    if (outcome.answer) return std::move(*outcome.answer);

    core::LogEvent("error", "stripe_unavailable",
                   {{"operation", operation},
                    {"attempts", std::to_string(attempts)},
                    {"problem", outcome.problem}});
    throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                      "the payment provider is unavailable (Stripe " + outcome.problem + " after " +
                          std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts") +
                          "); try again later")
        .WithRetryAfter(std::max(1, outcome.retry_after.value_or(options_.retry_after_seconds)));
}

namespace {

/// Maps a final non-2xx answer (never 429/5xx: those are handled by the retry loop).
[[noreturn]] void ThrowRefusal(const char* operation, const net::Response& response,
                               int retry_after_seconds) {
    const StripeError error = ParseStripeError(response.body);
    if (response.status == 401 || response.status == 403) {
        // Our key is wrong or lacks a permission: our outage, so 503, and the message never
        // repeats Stripe's, which quotes part of the key.
        core::LogEvent("error", "stripe_auth_failed",
                       {{"operation", operation}, {"status", std::to_string(response.status)}});
        throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                          "the payment provider refused our credentials; try again later")
            .WithRetryAfter(retry_after_seconds);
    }
    std::string detail =
        std::string("Stripe refused ") + operation + " (HTTP " + std::to_string(response.status);
    if (!error.type.empty()) detail += " " + error.type;
    if (!error.code.empty()) detail += "/" + error.code;
    detail += ")";
    if (!error.message.empty()) detail += ": " + core::RedactSecrets(error.message);
    core::LogEvent("error", "stripe_refused", {{"operation", operation}, {"detail", detail}});
    throw core::Error(core::ErrorCode::kInternal, detail);
}

PaymentIntent ParseOrThrow(const char* operation, const net::Response& response,
                           int retry_after_seconds) {
    try {
        return ParsePaymentIntent(response.body);
    } catch (const std::invalid_argument& error) {
        core::LogEvent("error", "stripe_bad_answer",
                       {{"operation", operation}, {"problem", error.what()}});
        throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                          std::string("the payment provider sent an unreadable answer (") +
                              error.what() + "); try again later")
            .WithRetryAfter(retry_after_seconds);
    }
}

}  // namespace

PaymentIntent StripeClient::CreatePaymentIntent(const CreateIntentParams& params) {
    if (params.idempotency_key.empty()) {
        throw core::Error(core::ErrorCode::kInternal,
                          "a PaymentIntent create needs an idempotency key");
    }
    net::Request request;
    request.method = "POST";
    request.url = options_.api_base + "/v1/payment_intents";
    request.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                       {"Idempotency-Key", params.idempotency_key}};
    std::string form;
    auto field = [&](const std::string& name, const std::string& value) {
        if (!form.empty()) form += '&';
        form += core::UrlEncode(name) + "=" + core::UrlEncode(value);
    };
    field("amount", std::to_string(params.amount));
    field("currency", params.currency);
    if (params.payment_method_types.empty()) {
        field("payment_method_types[]", "card");
    } else {
        for (const std::string& type : params.payment_method_types) {
            field("payment_method_types[]", type);
        }
    }
    field("metadata[job_id]", params.job_id);
    request.body = net::RequestBody::Memory(form);

    const net::Response response = Call("create_payment_intent", std::move(request));
    if (response.status / 100 != 2) {
        ThrowRefusal("create_payment_intent", response, options_.retry_after_seconds);
    }
    return ParseOrThrow("create_payment_intent", response, options_.retry_after_seconds);
}

std::optional<PaymentIntent> StripeClient::RetrievePaymentIntent(const std::string& id) {
    if (!IsPaymentIntentId(id)) {
        throw core::Error(core::ErrorCode::kInvalidInput,
                          "payment_intent_id is not a PaymentIntent id (pi_...)");
    }
    net::Request request;
    request.method = "GET";
    request.url = options_.api_base + "/v1/payment_intents/" + core::UrlEncode(id);

    const net::Response response = Call("retrieve_payment_intent", std::move(request));
    if (response.status == 404 && ParseStripeError(response.body).code == "resource_missing") {
        return std::nullopt;
    }
    if (response.status / 100 != 2) {
        ThrowRefusal("retrieve_payment_intent", response, options_.retry_after_seconds);
    }
    PaymentIntent intent =
        ParseOrThrow("retrieve_payment_intent", response, options_.retry_after_seconds);
    if (intent.id != id) {
        throw core::Error(core::ErrorCode::kUpstreamUnavailable,
                          "the payment provider answered with a different PaymentIntent")
            .WithRetryAfter(options_.retry_after_seconds);
    }
    return intent;
}

}  // namespace songd::payment
