#pragma once
/// @file
/// The fields of a Stripe PaymentIntent that songd reads, and their parsing.
///
///   payment::PaymentIntent intent = payment::ParsePaymentIntent(R"({"id":"pi_1",...})");
///   if (intent.status == "succeeded" && intent.amount_received >= 99) { ... }
///
/// `client_secret` lets a browser confirm the payment: it is returned to the client that
/// asked for the intent and never logged or put in an error.

#include <boost/json/fwd.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace songd::payment {

/// @brief A Stripe PaymentIntent as songd sees it (amounts in the currency's smallest unit).
struct PaymentIntent {
    std::string id;
    std::string status;  ///< requires_payment_method, processing, succeeded, canceled, ...
    int64_t amount = 0;
    int64_t amount_received = 0;
    std::string currency;  ///< lowercase ISO code, e.g. "usd"
    std::string client_secret;
    std::string metadata_job_id;  ///< metadata.job_id, empty when absent
    bool livemode = false;
};

/// Reads a PaymentIntent object. Throws std::invalid_argument naming the first missing or
/// mistyped field (never echoing the document, which may hold the client secret).
PaymentIntent PaymentIntentFromJson(const boost::json::value& value);

/// Parses a PaymentIntent document; throws std::invalid_argument as above.
PaymentIntent ParsePaymentIntent(std::string_view json);

/// True for the shape of a PaymentIntent id ("pi_" and letters/digits), so an id taken from a
/// request is safe inside a URL path and is not, say, a client secret pasted by mistake.
bool IsPaymentIntentId(std::string_view text);

}  // namespace songd::payment
