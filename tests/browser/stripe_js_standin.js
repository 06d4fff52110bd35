// A test stand-in for Stripe.js (https://js.stripe.com/v3/): the few calls songd's page uses.
// Served to the page through STRIPE_JS_URL by the browser tests; its requests go to the same
// origin, where the tests forward them to tests/stripe_mock. The card field takes Stripe's test
// numbers: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is declined.
(function () {
  "use strict";
  const base = new URL(document.currentScript.src).origin;
  const CARDS = { "4242424242424242": "pm_card_visa", "4000000000000002": "pm_card_chargeDeclined",
                  "4000000000009995": "pm_card_insufficientFunds" };

  function Stripe(publishableKey) {
    if (!/^pk_(test|live)_/.test(publishableKey || "")) throw new Error("Stripe(): a publishable key (pk_...) is required");
    let mounted = null;
    function elements(options) {
      if (!options || !options.clientSecret) throw new Error("elements(): clientSecret is required");
      return {
        clientSecret: options.clientSecret,
        create(type) {
          if (type !== "payment") throw new Error("stand-in: only create('payment')");
          return {
            mount(target) {
              const host = typeof target === "string" ? document.querySelector(target) : target;
              if (!host) throw new Error("mount(): no element " + target);
              const label = document.createElement("label");
              label.htmlFor = "standin-card-number";
              label.textContent = "Card number";
              const input = document.createElement("input");
              input.id = "standin-card-number";
              input.type = "text";
              input.inputMode = "numeric";
              input.autocomplete = "cc-number";
              input.placeholder = "1234 1234 1234 1234";
              host.replaceChildren(label, input);
              host.dataset.standin = "mounted";
              mounted = input;
            },
          };
        },
      };
    }
    async function confirmPayment(params) {
      if (!params || !params.elements) throw new Error("confirmPayment(): elements is required");
      const number = mounted ? mounted.value.replace(/\s+/g, "") : "";
      if (number.length < 16) {
        return { error: { type: "validation_error", code: "incomplete_number", message: "Your card number is incomplete." } };
      }
      const method = CARDS[number];
      if (!method) return { error: { type: "card_error", code: "card_declined", message: "Your card was declined." } };
      const secret = params.elements.clientSecret;
      const id = secret.split("_secret_")[0];
      const body = new URLSearchParams({ key: publishableKey, client_secret: secret, payment_method: method,
        return_url: (params.confirmParams && params.confirmParams.return_url) || "" });
      const response = await fetch(base + "/v1/payment_intents/" + id + "/confirm", { method: "POST", body: body });
      const doc = await response.json();
      if (!response.ok) return { error: doc.error };
      return { paymentIntent: doc };
    }
    return { elements, confirmPayment };
  }
  window.Stripe = Stripe;
})();
